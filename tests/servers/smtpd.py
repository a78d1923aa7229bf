#!/usr/bin/env python3
"""A scriptable SMTP test server for mailguard (aiosmtpd).

It accepts mail, or fails on purpose, so that a client can be tested against
every SMTP outcome: implicit TLS (465 style), STARTTLS (587 style) or plain,
AUTH PLAIN/LOGIN, and fault modes (4xx/5xx replies, a dropped connection in
the middle of DATA, a stall).

It prints one line "READY <port>" on stdout once it listens (use --port 0 for a
free port), then serves until killed. With --record DIR it writes:

  DIR/events.jsonl        one JSON object per SMTP command received
                          ({"conn", "event", "arg", "tls", "auth"}), appended
                          as it happens: lets a test prove that a refused TLS
                          handshake let no MAIL, AUTH or DATA through;
  DIR/msg-NNNNNN.eml      each accepted message, as received (CRLF, dot-unstuffed);
  DIR/msg-NNNNNN.json     its envelope: mail_from, rcpt_tos, mail_options, tls,
                          auth_user, conn. Written after the .eml, both by
                          rename, so a reader never sees half a message.

Example:
  python3 tests/servers/smtpd.py --port 0 --tls implicit \
      --cert good.pem --key good.key --auth user:pass --mode accept --record /tmp/rec
"""

import argparse
import asyncio
import itertools
import json
import os
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:  # pragma: no cover - reported to the caller, never skipped
    sys.stderr.write(
        "smtpd.py: the Python package aiosmtpd is missing; "
        "install it with: python3 -m pip install -r tests/servers/requirements.txt\n"
    )
    sys.exit(3)

MODES = ("accept", "421", "451", "452", "550", "554",
         "drop-mid-data", "drop-after-data", "stall")
STAGES = ("greeting", "ehlo", "mail", "rcpt", "data")

# Where each reply mode strikes unless --fault-at says otherwise, and its text.
DEFAULT_STAGE = {"421": "mail", "451": "data", "452": "rcpt", "550": "rcpt",
                 "554": "data", "stall": "data"}
DEFAULT_REPLY = {
    "421": "421 4.3.2 Service shutting down, closing transmission channel",
    "451": "451 4.3.0 Temporary local problem, try again later",
    "452": "452 4.5.3 Too many recipients",
    "550": "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table",
    "554": "554 5.7.1 Message rejected as spam",
}

CONN_IDS = itertools.count(1)
MSG_IDS = itertools.count(1)


class Recorder:
    def __init__(self, directory):
        self.dir = directory
        self.events = None
        if directory:
            os.makedirs(directory, exist_ok=True)
            self.events = open(os.path.join(directory, "events.jsonl"), "a", buffering=1)

    def event(self, **fields):
        if self.events:
            self.events.write(json.dumps(fields) + "\n")

    def message(self, envelope_fields, content):
        if not self.dir:
            return
        n = next(MSG_IDS)
        base = os.path.join(self.dir, "msg-%06d" % n)
        for suffix, data in ((".eml", content),
                             (".json", json.dumps(envelope_fields, indent=1).encode())):
            tmp = base + suffix + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, base + suffix)


class Handler:
    """aiosmtpd handler: the fault modes that are a reply to a command."""

    def __init__(self, opts, recorder):
        self.opts = opts
        self.rec = recorder

    def fault_here(self, stage, address=None):
        if self.opts.mode in ("accept", "drop-mid-data", "drop-after-data"):
            return False
        if self.opts.fault_at != stage:
            return False
        if stage == "rcpt" and self.opts.only_rcpt:
            return address in self.opts.only_rcpt
        return True

    async def strike(self, stage, address=None):
        """None to go on, or the reply to send."""
        if not self.fault_here(stage, address):
            return None
        if self.opts.mode == "stall":
            await asyncio.sleep(24 * 3600)
        return self.opts.reply or DEFAULT_REPLY[self.opts.mode]

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        reply = await self.strike("ehlo")
        return [reply] if reply else responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = await self.strike("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await self.strike("rcpt", address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        if self.opts.mode == "drop-after-data":
            server.rec_event("DATA-DROPPED", "after final dot")
            server.transport.close()
            await asyncio.sleep(3600)  # cancelled by the close
        reply = await self.strike("data")
        if reply:
            return reply
        self.rec.message({
            "conn": server.conn_id,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.is_tls(),
            "auth_user": server.auth_user,
            "size": len(envelope.original_content),
        }, envelope.original_content)
        return "250 2.0.0 Ok: queued as MG%06d" % server.conn_id


class FaultSMTP(SMTP):
    def __init__(self, handler, opts, recorder, **kwargs):
        super().__init__(handler, **kwargs)
        self.opts = opts
        self.rec = recorder
        self.conn_id = next(CONN_IDS)
        self.auth_user = None

    def is_tls(self):
        if self.session is not None and self.session.ssl is not None:
            return True
        return self.transport is not None and self.transport.get_extra_info("ssl_object") is not None

    def rec_event(self, event, arg=""):
        self.rec.event(conn=self.conn_id, event=event, arg=arg,
                       tls=self.is_tls(), auth=self.auth_user)

    def connection_made(self, transport):
        first = self.transport is None
        super().connection_made(transport)
        if first:
            self.rec_event("CONNECT")

    async def push(self, status):
        await super().push(status)
        # 421 means "closing the channel" (RFC 5321 3.8): do it.
        if str(status).startswith("421") and self.transport is not None:
            self.transport.close()

    async def smtp_DATA(self, arg):
        if self.opts.mode != "drop-mid-data" or not self.envelope.rcpt_tos:
            return await super().smtp_DATA(arg)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        await self._reader.readuntil(b"\r\n")
        self.rec_event("DATA-DROPPED", "after the first line of content")
        self.transport.close()


def _recording(name):
    async def method(self, arg):
        # AUTH's argument may carry the credentials: keep the mechanism only.
        shown = (arg or "").split(" ")[0] if name == "AUTH" else (arg or "")
        self.rec_event(name, shown)
        return await getattr(SMTP, "smtp_" + name)(self, arg)
    return method


for _name in ("HELO", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "RSET", "NOOP", "QUIT"):
    setattr(FaultSMTP, "smtp_" + _name, _recording(_name))
_plain_data = FaultSMTP.smtp_DATA


async def _recorded_data(self, arg):
    self.rec_event("DATA", arg or "")
    return await _plain_data(self, arg)


FaultSMTP.smtp_DATA = _recorded_data


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        server.rec_event("AUTH-RESULT", "%s %s" % (mechanism, "ok" if ok else "failed"))
        if ok:
            server.auth_user = user
        # handled=False: aiosmtpd then sends 535 itself on failure.
        return AuthResult(success=ok, handled=False)
    return authenticator


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed in READY)")
    p.add_argument("--tls", choices=("implicit", "starttls", "none"), default="none")
    p.add_argument("--cert", help="server certificate chain (PEM)")
    p.add_argument("--key", help="server private key (PEM)")
    p.add_argument("--auth", metavar="USER:PASS", help="require AUTH PLAIN/LOGIN with these credentials")
    p.add_argument("--auth-exclude", action="append", metavar="MECH",
                   help="do not offer this AUTH mechanism (PLAIN or LOGIN); repeatable")
    p.add_argument("--mode", choices=MODES, default="accept")
    p.add_argument("--fault-at", choices=STAGES,
                   help="the command a reply or stall mode strikes at (default depends on the mode)")
    p.add_argument("--only-rcpt", action="append", metavar="ADDR",
                   help="with --fault-at rcpt: strike only these recipients")
    p.add_argument("--reply", help="the exact reply line for the reply modes")
    p.add_argument("--record", metavar="DIR", help="record events and messages in DIR")
    p.add_argument("--hostname", default="mx.test.invalid", help="name in the greeting")
    opts = p.parse_args(argv)
    if opts.tls != "none" and not (opts.cert and opts.key):
        p.error("--tls %s needs --cert and --key" % opts.tls)
    if opts.fault_at is None:
        opts.fault_at = DEFAULT_STAGE.get(opts.mode, "data")
    if opts.fault_at == "greeting" and opts.mode != "stall":
        p.error("--fault-at greeting works with --mode stall only")
    return opts


async def serve(opts):
    recorder = Recorder(opts.record)
    handler = Handler(opts, recorder)
    context = None
    if opts.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(opts.cert, opts.key)
    loop = asyncio.get_running_loop()

    if opts.mode == "stall" and opts.fault_at == "greeting":
        async def silent(reader, writer):
            recorder.event(conn=next(CONN_IDS), event="CONNECT", arg="stall at greeting",
                           tls=context is not None and opts.tls == "implicit", auth=None)
            await asyncio.sleep(24 * 3600)
        server = await asyncio.start_server(
            silent, opts.host, opts.port,
            ssl=context if opts.tls == "implicit" else None)
    else:
        kwargs = dict(hostname=opts.hostname, data_size_limit=64 * 1024 * 1024,
                      enable_SMTPUTF8=True,
                      # aiosmtpd's check only knows STARTTLS; implicit TLS is TLS already.
                      auth_require_tls=opts.tls == "starttls")
        if opts.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if opts.auth:
            user, _, password = opts.auth.partition(":")
            kwargs.update(authenticator=make_authenticator(user, password), auth_required=True,
                          auth_exclude_mechanism=opts.auth_exclude or [])

        def factory():
            return FaultSMTP(handler, opts, recorder, loop=loop, **kwargs)
        server = await loop.create_server(
            factory, opts.host, opts.port,
            ssl=context if opts.tls == "implicit" else None)

    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(serve(opts))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
