"""python -m flowmail.fakes {sendgrid|mailgun} --port P --api-key K [--domain D]"""

from __future__ import annotations

import argparse

from aiohttp import web

from flowmail.fakes import mailgun, sendgrid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("api", choices=["sendgrid", "mailgun"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--domain", default="mg.shopflow.example")
    args = parser.parse_args()
    app = (sendgrid.make_app(args.api_key) if args.api == "sendgrid"
           else mailgun.make_app(args.api_key, args.domain))
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
