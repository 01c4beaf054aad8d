#!/usr/bin/env python3
"""A small OAuth 2.0 provider and API for benches/oauth2_refresh.sh (standard library only).

    oauth2_server.py --client-id ID --client-secret SECRET [--port 0] [--delay-ms 20]
                     [--token-delay-ms 20]

Prints the port it listens on (127.0.0.1) as the first line of stdout, then serves until killed.
Threaded (a thread per connection, HTTP/1.1 keep-alive, TCP_NODELAY), so concurrent clients are
served in parallel; every answer carries Content-Length.

    POST /token         form body: grant_type=client_credentials or refresh_token (with
                        refresh_token=), client_id and client_secret in the form (or HTTP Basic).
                        Answers {"access_token", "token_type": "Bearer", "expires_in", "refresh_token"}
                        after --token-delay-ms. Refresh tokens rotate: a refresh token works once,
                        a reused or unknown one gets 400 {"error": "invalid_grant"}.
    GET  /api/...       after --delay-ms: 200 {"ok": true, "path": ..., "i": <query i>} when
                        `Authorization: Bearer <token>` names an issued, unexpired token, else 401
                        {"error": "invalid_token"}.
    POST /_config       JSON {"grant_expires_in": N, "refresh_expires_in": M}: the expires_in of
                        tokens from the client-credentials grant and from the refresh grant
                        (both 3600 at start). Answers the config.
    GET  /_stats        counters since the last reset (JSON, see Stats.snapshot).
    POST /_stats/reset  zeroes the counters.
    GET  /__status      200, for start-up polling.

Token expiry is checked against the server's own clock (time.monotonic) with sub-second
precision: a token issued with expires_in N is refused N seconds after it was issued.
"""

import argparse
import base64
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CONFIG = {"grant_expires_in": 3600, "refresh_expires_in": 3600}
ACCESS = {}  # access token -> (expires at, monotonic; serial of the grant that issued it)
REFRESH = {}  # live refresh token -> serial of the grant that issued it
SERIAL = [0]  # grants issued since start
NEWEST_EXPIRY = [None]  # monotonic expiry of the newest access token issued


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.since = time.monotonic()
        self.token_in_use_expiry = NEWEST_EXPIRY[0]  # the token the client holds at reset
        self.token_requests = {}  # grant_type -> count (answered or refused)
        self.token_errors = {}  # error code -> count
        self.token_events = []  # (monotonic, grant_type, outcome, api requests started before it)
        self.api_requests = 0
        self.api_ok = 0
        self.api_401 = 0
        self.api_401_reasons = {}  # missing / unknown / expired -> count
        self.stale_token_uses = 0  # accepted requests with a token older than the newest one issued
        self.first_api = None
        self.last_api = None
        self.max_in_flight = 0
        self.in_flight = 0

    def snapshot(self):
        first = self.first_api
        return {
            "token_requests": dict(self.token_requests),
            "token_requests_total": sum(self.token_requests.values()),
            "token_errors": dict(self.token_errors),
            "token_events": [
                {
                    "grant_type": g,
                    "outcome": o,
                    "api_requests_before": n,
                    "ms_after_first_api_request": None if first is None else round((t - first) * 1000, 1),
                    "ms_after_reset": round((t - self.since) * 1000, 1),
                }
                for t, g, o, n in self.token_events
            ],
            "api_requests": self.api_requests,
            "api_ok": self.api_ok,
            "api_401": self.api_401,
            "api_401_reasons": dict(self.api_401_reasons),
            "stale_token_uses": self.stale_token_uses,
            "api_span_ms": None if first is None else round((self.last_api - first) * 1000, 1),
            "token_at_reset_expires_ms_after_first_api_request": None
            if first is None or self.token_in_use_expiry is None
            else round((self.token_in_use_expiry - first) * 1000, 1),
            "max_in_flight": self.max_in_flight,
        }


STATS = Stats()


def issue(grant_type, expires_in):
    """A new access and refresh token (caller holds LOCK)."""
    SERIAL[0] += 1
    access = secrets.token_urlsafe(24)
    refresh = secrets.token_urlsafe(24)
    ACCESS[access] = (time.monotonic() + expires_in, SERIAL[0])
    NEWEST_EXPIRY[0] = ACCESS[access][0]
    REFRESH[refresh] = SERIAL[0]
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": refresh,
        "scope": "bench",
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body are two writes: without TCP_NODELAY the body waits for the client's
    # delayed ACK (40 ms on Linux loopback), which would dwarf the 20 ms answer time
    disable_nagle_algorithm = True
    server_version = "oauth2-bench"
    sys_version = ""

    def log_message(self, *args):
        pass

    def answer(self, status, obj, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # --- routes ---

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__status":
            return self.answer(200, {"ok": True})
        if url.path == "/_stats":
            with LOCK:
                snap = STATS.snapshot()
            return self.answer(200, snap)
        if url.path.startswith("/api/"):
            return self.api(url)
        self.answer(404, {"error": "not_found"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if url.path == "/token":
            return self.token(raw)
        if url.path == "/_stats/reset":
            with LOCK:
                STATS.reset()
            return self.answer(200, {"ok": True})
        if url.path == "/_config":
            try:
                new = json.loads(raw or b"{}")
                with LOCK:
                    for k in ("grant_expires_in", "refresh_expires_in"):
                        if k in new:
                            CONFIG[k] = int(new[k])
                    cfg = dict(CONFIG)
            except (ValueError, TypeError):
                return self.answer(400, {"error": "bad config"})
            return self.answer(200, cfg)
        self.answer(404, {"error": "not_found"})

    def token(self, raw):
        time.sleep(self.server.token_delay)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace")).items()}
        cid, csecret = form.get("client_id"), form.get("client_secret")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                cid, csecret = urllib.parse.unquote_plus(u), urllib.parse.unquote_plus(p)
            except ValueError:
                pass
        grant = form.get("grant_type", "")
        with LOCK:
            STATS.token_requests[grant] = STATS.token_requests.get(grant, 0) + 1

            def refuse(status, code):
                STATS.token_errors[code] = STATS.token_errors.get(code, 0) + 1
                STATS.token_events.append((time.monotonic(), grant, code, STATS.api_requests))
                return status, {"error": code}

            if cid != self.server.client_id or csecret != self.server.client_secret:
                status, obj = refuse(401, "invalid_client")
            elif grant == "client_credentials":
                status, obj = 200, issue(grant, CONFIG["grant_expires_in"])
                STATS.token_events.append((time.monotonic(), grant, "issued", STATS.api_requests))
            elif grant == "refresh_token":
                if REFRESH.pop(form.get("refresh_token", ""), None) is None:
                    status, obj = refuse(400, "invalid_grant")
                else:
                    status, obj = 200, issue(grant, CONFIG["refresh_expires_in"])
                    STATS.token_events.append((time.monotonic(), grant, "issued", STATS.api_requests))
            else:
                status, obj = refuse(400, "unsupported_grant_type")
        self.answer(status, obj)

    def api(self, url):
        now = time.monotonic()
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        with LOCK:
            STATS.api_requests += 1
            STATS.first_api = STATS.first_api or now
            STATS.last_api = now
            STATS.in_flight += 1
            STATS.max_in_flight = max(STATS.max_in_flight, STATS.in_flight)
            entry = ACCESS.get(token) if token else None
            if token is None:
                reason = "missing"
            elif entry is None:
                reason = "unknown"
            elif entry[0] <= now:
                reason = "expired"
            else:
                reason = None
                if entry[1] < SERIAL[0]:
                    STATS.stale_token_uses += 1
        try:
            time.sleep(self.server.delay)
        finally:
            with LOCK:
                STATS.in_flight -= 1
                if reason is None:
                    STATS.api_ok += 1
                else:
                    STATS.api_401 += 1
                    STATS.api_401_reasons[reason] = STATS.api_401_reasons.get(reason, 0) + 1
        if reason is not None:
            return self.answer(401, {"error": "invalid_token"}, [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        q = urllib.parse.parse_qs(url.query)
        i = q.get("i", [None])[0]
        self.answer(200, {"ok": True, "path": url.path, "i": int(i) if i and i.isdigit() else i})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--delay-ms", type=float, default=20.0, help="API answer delay (default 20)")
    p.add_argument("--token-delay-ms", type=float, default=20.0, help="token endpoint delay (default 20)")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    a = p.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.delay = a.delay_ms / 1000
    srv.token_delay = a.token_delay_ms / 1000
    srv.client_id = a.client_id
    srv.client_secret = a.client_secret
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
