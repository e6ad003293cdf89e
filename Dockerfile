# flowmail worker image (used by docker-compose.yml and deploy/k8s). The package carries its
# schemas, templates, fonts and fake provider APIs; tests/packaging checks the same wheel
# installs and runs `flowmail selfcheck` away from a checkout (no Docker needed for that).
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist .

FROM python:3.11-slim
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && useradd --create-home flowmail
USER flowmail
WORKDIR /home/flowmail
ENV FLOWMAIL_HOME=/home/flowmail/.flowmail
RUN flowmail selfcheck > /dev/null
EXPOSE 6066
ENTRYPOINT ["flowmail"]
CMD ["worker"]
