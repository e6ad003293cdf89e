# flowmail worker image (used by docker-compose.yml and deploy/k8s).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY flowmail ./flowmail
COPY streams ./streams
COPY processors ./processors
COPY providers ./providers
COPY schemas ./schemas
COPY templates ./templates
COPY deploy ./deploy
RUN pip install --no-cache-dir -e . && useradd --create-home flowmail
USER flowmail
ENV FLOWMAIL_HOME=/home/flowmail/.flowmail
EXPOSE 6066
ENTRYPOINT ["flowmail"]
CMD ["worker"]
