#!/usr/bin/env python3
"""A third-party OAuth 1.0a (RFC 5849) server for linkrun's integration tests.

oauthlib's own server endpoints (RequestTokenEndpoint, AuthorizationEndpoint,
AccessTokenEndpoint, ResourceEndpoint) do all the protocol checks, signature
base strings included; this file only adds an in-memory validator, an HTTP
front end on 127.0.0.1 and a request log. Started by tests/common/oauth1.rs,
which installs the pinned packages (oauthlib, cryptography, PyJWT) and sets
PYTHONPATH.

    python3 oauth1_server.py CONFIG.json

prints `PORT <n>` on stdout once listening, then serves until killed.

CONFIG.json:
    {"clients": [{"key": "...", "secret": "..." or null, "rsa_public_key": "PEM" or null}],
     "access_tokens": [{"client_key": "...", "token": "...", "secret": "..."}],
     "realms": ["photos"],
     "signature_methods": [...],   # optional; default: the six below
     "strict_query": false}        # optional; see normalize_form()

Endpoints:
    POST /request_token   (any method; the one signed)   -> 200 oauth_token=..&oauth_token_secret=..&oauth_callback_confirmed=true
    GET  /authorize?oauth_token=T[&deny=1]               -> 302 to callback?oauth_token=T&oauth_verifier=V
                                                            (oob: 200 text/plain oauth_verifier=V; deny=1: 200 "denied")
    POST /access_token    (any method)                   -> 200 oauth_token=..&oauth_token_secret=..&oauth_authorized_realms=..
    ANY  /resource[/...]                                 -> 200 JSON (see resource())
    GET  /log                                            -> JSON list of requests received (not /log itself)
    DELETE /log                                          -> clears the log
Failures answer `Content-Type: application/x-www-form-urlencoded` with the body
`oauth_problem=NAME` (names from the OAuth problem reporting extension); a
human-readable reason is in the `X-OAuth-Problem-Advice` header and the log.
"""

import binascii
import hmac
import json
import re
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import oauthlib
from oauthlib.common import urldecode
from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)
from oauthlib.oauth1.rfc5849 import (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_HMAC_SHA512,
    SIGNATURE_PLAINTEXT,
    SIGNATURE_RSA_SHA1,
    SIGNATURE_RSA_SHA256,
    SIGNATURE_TYPE_AUTH_HEADER,
    SIGNATURE_TYPE_BODY,
    SIGNATURE_TYPE_QUERY,
    errors,
)

# RSA verification in oauthlib 3.2.2 goes through PyJWT, which uses cryptography:
# import them now so a missing package fails at start, not at the first RSA request.
import cryptography  # noqa: F401
import jwt.algorithms  # noqa: F401

if oauthlib.__version__ != "3.2.2":
    print(f"warning: oauthlib {oauthlib.__version__} (tests pin 3.2.2)", file=sys.stderr)

DEFAULT_SIGNATURE_METHODS = (
    SIGNATURE_HMAC_SHA1,
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_HMAC_SHA512,
    SIGNATURE_RSA_SHA1,
    SIGNATURE_RSA_SHA256,
    SIGNATURE_PLAINTEXT,
)

TOKEN_RE = re.compile(r"^[A-Za-z0-9_.~-]{4,128}$")
NONCE_RE = re.compile(r"^[A-Za-z0-9_.~+/=-]{1,128}$")
TIMESTAMP_WINDOW = 600
DUMMY_CLIENT = "dummy-client-key"
DUMMY_REQUEST_TOKEN = "dummy-request-token"
DUMMY_ACCESS_TOKEN = "dummy-access-token"
DUMMY_SECRET = "dummy-secret-never-matches"

# Raw characters oauthlib.common.urldecode accepts in a query string or form body.
OAUTHLIB_URLENCODED = set(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-" b"=&;:%+~,*@!()/?'$"
)

_tl = threading.local()


def _hint(request, problem):
    """Records why a validator check failed, for the oauth_problem of the answer."""
    try:
        request.lr_problem = request.lr_problem or problem
    except AttributeError:
        request.lr_problem = problem


class Store:
    """Clients, tokens, verifiers and nonces, in memory."""

    def __init__(self, config):
        self.lock = threading.Lock()
        self.clients = {}
        for c in config.get("clients", []):
            self.clients[c["key"]] = {"secret": c.get("secret"), "rsa_public_key": c.get("rsa_public_key")}
        self.realms = list(config.get("realms", []))
        # token -> {client_key, secret, callback, realms, verifier, used}
        self.request_tokens = {}
        # token -> {client_key, secret, realms}
        self.access_tokens = {}
        for t in config.get("access_tokens", []):
            self.access_tokens[t["token"]] = {
                "client_key": t["client_key"],
                "secret": t["secret"],
                "realms": list(t.get("realms", self.realms)),
            }
        self.nonces = set()
        self.signature_methods = tuple(config.get("signature_methods") or DEFAULT_SIGNATURE_METHODS)
        self._dummy_rsa = None

    def dummy_rsa_public_key(self):
        with self.lock:
            if self._dummy_rsa is None:
                from cryptography.hazmat.primitives import serialization
                from cryptography.hazmat.primitives.asymmetric import rsa

                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._dummy_rsa = (
                    key.public_key()
                    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                    .decode("ascii")
                )
            return self._dummy_rsa


class Validator(RequestValidator):
    def __init__(self, store):
        super().__init__()
        self.store = store

    # ---- policy ----
    enforce_ssl = False

    @property
    def allowed_signature_methods(self):
        return self.store.signature_methods

    @property
    def timestamp_lifetime(self):
        return TIMESTAMP_WINDOW

    @property
    def realms(self):
        return self.store.realms

    def check_client_key(self, client_key):
        return bool(TOKEN_RE.match(client_key))

    def check_request_token(self, request_token):
        return bool(TOKEN_RE.match(request_token))

    def check_access_token(self, request_token):
        return bool(TOKEN_RE.match(request_token))

    def check_nonce(self, nonce):
        return bool(NONCE_RE.match(nonce))

    def check_verifier(self, verifier):
        return bool(TOKEN_RE.match(verifier))

    def check_realms(self, realms):
        return all(isinstance(r, str) for r in realms)

    # ---- dummies (oauthlib uses them to keep timing even) ----
    @property
    def dummy_client(self):
        return DUMMY_CLIENT

    @property
    def dummy_request_token(self):
        return DUMMY_REQUEST_TOKEN

    @property
    def dummy_access_token(self):
        return DUMMY_ACCESS_TOKEN

    # ---- secrets and keys ----
    def get_client_secret(self, client_key, request):
        c = self.store.clients.get(client_key)
        if c is None or c["secret"] is None:
            return DUMMY_SECRET
        return c["secret"]

    def get_rsa_key(self, client_key, request):
        c = self.store.clients.get(client_key)
        if c is None or not c["rsa_public_key"]:
            return self.store.dummy_rsa_public_key()
        return c["rsa_public_key"]

    def get_request_token_secret(self, client_key, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        if t is None or t["client_key"] != client_key:
            return DUMMY_SECRET
        return t["secret"]

    def get_access_token_secret(self, client_key, token, request):
        with self.store.lock:
            t = self.store.access_tokens.get(token)
        if t is None or t["client_key"] != client_key:
            return DUMMY_SECRET
        return t["secret"]

    # ---- validation ----
    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request, request_token=None, access_token=None):
        _tl.request = request
        try:
            ts = int(timestamp)
        except ValueError:
            _hint(request, "timestamp_refused")
            return False
        if abs(time.time() - ts) > TIMESTAMP_WINDOW:
            _hint(request, "timestamp_refused")
            return False
        key = (client_key, timestamp, nonce, request_token or access_token)
        with self.store.lock:
            if key in self.store.nonces:
                _hint(request, "nonce_used")
                return False
            self.store.nonces.add(key)
        return True

    def validate_client_key(self, client_key, request):
        _tl.request = request
        return client_key in self.store.clients

    def validate_request_token(self, client_key, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        if t is None or t["client_key"] != client_key:
            return False
        if t["used"]:
            _hint(request, "token_used")
            return False
        return True

    def validate_access_token(self, client_key, token, request):
        with self.store.lock:
            t = self.store.access_tokens.get(token)
        return t is not None and t["client_key"] == client_key

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        if redirect_uri == "oob":
            return True
        try:
            u = urllib.parse.urlsplit(redirect_uri)
        except ValueError:
            return False
        return u.scheme == "http" and u.hostname in ("127.0.0.1", "localhost", "::1")

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def validate_verifier(self, client_key, token, verifier, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        if t is None or t["client_key"] != client_key or t["verifier"] is None:
            return False
        return hmac.compare_digest(t["verifier"].encode(), verifier.encode())

    def verify_request_token(self, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        return t is not None and not t["used"]

    def verify_realms(self, token, realms, request):
        return True

    # ---- lookups ----
    def get_default_realms(self, client_key, request):
        return list(self.store.realms)

    def get_realms(self, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        return list(t["realms"]) if t else []

    def get_redirect_uri(self, token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(token)
        return t["callback"] if t else "oob"

    # ---- saving ----
    def save_request_token(self, token, request):
        with self.store.lock:
            self.store.request_tokens[token["oauth_token"]] = {
                "client_key": request.client_key,
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "realms": list(request.realms or []),
                "verifier": None,
                "used": False,
            }

    def save_verifier(self, token, verifier, request):
        with self.store.lock:
            self.store.request_tokens[token]["verifier"] = verifier["oauth_verifier"]

    def save_access_token(self, token, request):
        with self.store.lock:
            self.store.access_tokens[token["oauth_token"]] = {
                "client_key": request.client_key,
                "secret": token["oauth_token_secret"],
                "realms": list(request.realms or []),
            }

    def invalidate_request_token(self, client_key, request_token, request):
        with self.store.lock:
            t = self.store.request_tokens.get(request_token)
            if t is not None:
                t["used"] = True


# ---- oauth_problem mapping ----


def problem_from_error(error, description):
    """Maps an oauthlib OAuth1Error (error code + description) to an oauth_problem."""
    if error == "invalid_signature_method":
        return "signature_method_rejected"
    d = str(description).lower()
    if "timestamp" in d:
        return "timestamp_refused"
    if "oauth version" in d:
        return "version_rejected"
    if "client key format" in d:
        return "consumer_key_rejected"
    if "resource owner key format" in d:
        return "token_rejected"
    if "verifier format" in d:
        return "verifier_invalid"
    if "missing" in d:
        return "parameter_absent"
    return "parameter_rejected"


def problem_from_request(request, order):
    """Maps a failed validation (hint, then validator_log in `order`) to an oauth_problem."""
    hint = getattr(request, "lr_problem", None) if request is not None else None
    if hint in ("timestamp_refused", "nonce_used"):
        return hint, hint
    log = request.validator_log if request is not None else {}
    for key, problem in order:
        if key in log and not log[key]:
            if problem == "token_rejected" and hint == "token_used":
                return "token_used", "request token already exchanged"
            return problem, f"{key} check failed"
    return "signature_invalid", "validation failed"


REQUEST_TOKEN_ORDER = [
    ("client", "consumer_key_unknown"),
    ("callback", "parameter_rejected"),
    ("realm", "permission_denied"),
    ("signature", "signature_invalid"),
]
ACCESS_TOKEN_ORDER = [
    ("client", "consumer_key_unknown"),
    ("resource_owner", "token_rejected"),
    ("verifier", "verifier_invalid"),
    ("signature", "signature_invalid"),
]
RESOURCE_ORDER = [
    ("client", "consumer_key_unknown"),
    ("resource_owner", "token_rejected"),
    ("realm", "permission_denied"),
    ("signature", "signature_invalid"),
]


def normalize_form(raw: bytes) -> str:
    """Percent-encodes the bytes oauthlib's urldecode refuses outright (space, `[`, `]`, `"`,
    `{`, `|`, `^`, non-ASCII, ...). Decoding is unchanged by this, so is the signature base
    string; without it oauthlib raises on such a query and silently drops such a form body."""
    return "".join(chr(b) if b in OAUTHLIB_URLENCODED else "%%%02X" % b for b in raw)


def decoded_non_oauth(pairs):
    return [[k, v] for k, v in pairs if not k.startswith("oauth_")]


class OAuthProblem(Exception):
    def __init__(self, status, problem, advice):
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.advice = advice


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, config):
        super().__init__(addr, handler)
        self.config = config
        self.store = Store(config)
        self.validator = Validator(self.store)
        self.request_token_ep = RequestTokenEndpoint(self.validator)
        self.authorization_ep = AuthorizationEndpoint(self.validator)
        self.access_token_ep = AccessTokenEndpoint(self.validator)
        self.resource_ep = ResourceEndpoint(self.validator)
        self.strict_query = bool(config.get("strict_query", False))
        self.log = []
        self.log_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oauthlib-test-server/" + oauthlib.__version__

    def log_message(self, format, *args):  # quiet: the Rust side reads /log instead
        pass

    def __getattr__(self, name):
        # Every HTTP method goes to one handler (BaseHTTPRequestHandler looks up do_<METHOD>).
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    # ---- plumbing ----
    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body, content_type="text/plain; charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self._response = {"status": status, "headers": dict(headers or {}), "body": body.decode("utf-8", "replace")}

    def send_problem(self, status, problem, advice):
        headers = {"X-OAuth-Problem-Advice": re.sub(r"[^\x20-\x7e]", "?", str(advice))[:500]}
        if status == 401:
            realm = self.server.store.realms[0] if self.server.store.realms else ""
            headers["WWW-Authenticate"] = f'OAuth realm="{realm}", oauth_problem="{problem}"'
        self.send(status, "oauth_problem=" + problem, "application/x-www-form-urlencoded", headers)

    def oauth_inputs(self):
        """(uri, method, body, headers) as oauthlib wants them, plus the normalized query and body."""
        raw_target = self.path.encode("latin-1")
        raw_path, _, raw_query = raw_target.partition(b"?")
        form = "application/x-www-form-urlencoded" in self.headers.get("Content-Type", "")
        if self.server.strict_query:
            query = raw_query.decode("latin-1")
            body = self.raw_body.decode("utf-8", "replace")
        else:
            query = normalize_form(raw_query)
            body = normalize_form(self.raw_body) if form else self.raw_body.decode("utf-8", "replace")
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
        uri = "http://" + host + raw_path.decode("latin-1") + ("?" + query if raw_query else "")
        headers = {k: v for k, v in self.headers.items()}
        return uri, self.command, body, headers, query, form

    def handle_any(self):
        self._response = None
        self.raw_body = self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path == "/log":
                return self.serve_log()
            if path == "/request_token":
                self.request_token()
            elif path == "/authorize":
                self.authorize()
            elif path == "/access_token":
                self.access_token()
            elif path == "/resource" or path.startswith("/resource/"):
                self.resource()
            else:
                self.send(404, "not found")
        except OAuthProblem as p:
            self.send_problem(p.status, p.problem, p.advice)
        except Exception:
            tb = traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
            self.send(500, tb)
        finally:
            if path != "/log":
                self.record()

    def record(self):
        target = self.path
        p, _, q = target.partition("?")
        entry = {
            "method": self.command,
            "path": p,
            "query": q,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body": self.raw_body.decode("utf-8", "replace"),
            "response": self._response,
        }
        with self.server.log_lock:
            self.server.log.append(entry)

    def serve_log(self):
        with self.server.log_lock:
            if self.command == "DELETE":
                self.server.log.clear()
                data = []
            else:
                data = list(self.server.log)
        self.send(200, json.dumps(data), "application/json")

    # ---- endpoints ----
    def token_endpoint(self, create, order):
        uri, method, body, headers, _, _ = self.oauth_inputs()
        _tl.request = None
        try:
            h, b, s = create(uri, http_method=method, body=body, headers=headers)
        except binascii.Error as e:  # RSA signature that is not base64
            raise OAuthProblem(401, "signature_invalid", f"oauth_signature: {e}")
        except ValueError as e:  # a malformed query, form body or Authorization header
            raise OAuthProblem(400, "parameter_rejected", str(e))
        if s == 200:
            return self.send(200, b, h.get("Content-Type", "application/x-www-form-urlencoded"))
        if b:  # an OAuth1Error oauthlib raised: error=...&error_description=...
            fields = dict(urllib.parse.parse_qsl(b))
            problem = problem_from_error(fields.get("error"), fields.get("error_description", ""))
            raise OAuthProblem(s, problem, f"{fields.get('error')}: {fields.get('error_description', '')}")
        problem, advice = problem_from_request(_tl.request, order)
        raise OAuthProblem(401, problem, advice)

    def request_token(self):
        self.token_endpoint(self.server.request_token_ep.create_request_token_response, REQUEST_TOKEN_ORDER)

    def access_token(self):
        self.token_endpoint(self.server.access_token_ep.create_access_token_response, ACCESS_TOKEN_ORDER)

    def authorize(self):
        uri, method, body, headers, query, _ = self.oauth_inputs()
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        token = params.get("oauth_token")
        if not token:
            raise OAuthProblem(400, "parameter_absent", "oauth_token missing")
        if params.get("deny") == "1":
            return self.send(200, "denied")
        ep = self.server.authorization_ep
        realms = self.server.validator.get_realms(token, None)
        try:
            h, b, s = ep.create_authorization_response(uri, http_method=method, headers=headers, realms=realms)
        except errors.InvalidClientError:
            raise OAuthProblem(401, "token_rejected", "unknown or used request token")
        except errors.OAuth1Error as e:
            raise OAuthProblem(400, problem_from_error(e.error, e.description), str(e))
        except ValueError as e:
            raise OAuthProblem(400, "parameter_rejected", str(e))
        if s == 302:
            return self.send(302, "", headers={"Location": h["Location"]})
        verifier = dict(urllib.parse.parse_qsl(b))["oauth_verifier"]
        return self.send(200, "oauth_verifier=" + verifier)

    def resource(self):
        uri, method, body, headers, query, form = self.oauth_inputs()
        ep = self.server.resource_ep
        try:
            valid, request = ep.validate_protected_resource_request(uri, http_method=method, body=body, headers=headers)
        except binascii.Error as e:
            raise OAuthProblem(401, "signature_invalid", f"oauth_signature: {e}")
        except ValueError as e:
            raise OAuthProblem(401, "parameter_rejected", str(e))
        if not valid:
            raise OAuthProblem(401, *self.resource_problem(ep, request, uri, method, body, headers))
        sig_type, _, _ = ep._get_signature_type_and_params(request)
        placement = {SIGNATURE_TYPE_AUTH_HEADER: "header", SIGNATURE_TYPE_QUERY: "query", SIGNATURE_TYPE_BODY: "body"}[
            sig_type
        ]
        answer = {
            "ok": True,
            "client_key": request.client_key,
            "token": request.resource_owner_key,
            "method": method,
            "path": urllib.parse.urlsplit(self.path).path,
            "query": decoded_non_oauth(urldecode(query)) if query else [],
            "form": decoded_non_oauth(urldecode(body)) if form and body else [],
            "signature_method": request.signature_method,
            "placement": placement,
            "realm": request.realm,
            "body": self.raw_body.decode("utf-8", "replace"),
        }
        self.send(200, json.dumps(answer), "application/json")

    def resource_problem(self, ep, request, uri, method, body, headers):
        """Finds out which check failed: oauthlib's resource endpoint answers only True/False."""
        if request is None:
            try:
                ep._create_request(uri, method, body, headers)
            except errors.OAuth1Error as e:
                return problem_from_error(e.error, e.description), str(e)
            return "parameter_rejected", "request not understood"
        try:
            ep._check_mandatory_parameters(request)
        except errors.OAuth1Error as e:
            return problem_from_error(e.error, e.description), str(e)
        if not request.resource_owner_key:
            return "parameter_absent", "oauth_token missing"
        if not self.server.validator.check_access_token(request.resource_owner_key):
            return "token_rejected", "malformed oauth_token"
        return problem_from_request(request, RESOURCE_ORDER)


def main():
    if len(sys.argv) != 2:
        print("usage: oauth1_server.py CONFIG.json", file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    server = Server(("127.0.0.1", 0), Handler, config)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
