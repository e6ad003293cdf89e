"""OpenSearch behind TLS and basic auth, for the tests of the secured path.

OpenSearch's security plugin is not published on Maven Central (the local node runs the
plain distribution's jars), so the secured node managed services offer is stood in for by
this proxy: TLS with the local stack's CA (flowmail/localstack/tls.py), HTTP basic auth
checked (401 without or with wrong credentials, as the plugin answers), every request then
passed to the node unchanged.

    python -m flowmail.localstack.tls_proxy --port 9243 --upstream http://127.0.0.1:9200 \\
        --cert server.pem --key server-key.pem --user flowmail --password-file pw
"""

from __future__ import annotations

import argparse
import base64
import hmac
import ssl
from pathlib import Path

from aiohttp import ClientSession, web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "host", "content-length",
              "authorization"}


def make_app(upstream: str, user: str, password: str) -> web.Application:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def forward(request: web.Request) -> web.StreamResponse:
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            return web.json_response(
                {"error": "unauthorized", "status": 401}, status=401,
                headers={"WWW-Authenticate": 'Basic realm="OpenSearch Security"'})
        session: ClientSession = request.app["session"]
        # aiohttp hands over a request body already decompressed: say so upstream
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        async with session.request(request.method, upstream + request.path_qs,
                                   headers=headers, data=await request.read()) as answer:
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=answer.status, body=body, headers=kept)

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        # responses pass through as they come (compressed, with their Content-Encoding)
        app["session"] = ClientSession(auto_decompress=False)
        yield
        await app["session"].close()

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    args = parser.parse_args()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    app = make_app(args.upstream.rstrip("/"), args.user,
                   args.password_file.read_text().strip())
    web.run_app(app, host=args.host, port=args.port, ssl_context=context, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
