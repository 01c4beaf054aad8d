// A certified OAuth 2.0 / OpenID Connect provider for linkrun's tests: panva's oidc-provider
// (OpenID Certified), configured from a JSON file, plus a protected resource and counters.
//
//   node provider.mjs CONFIG.json
//
// Listens on 127.0.0.1, port 0; prints `PORT <n>` once listening; serves until killed or until its
// standard input closes (the test process that started it is gone). The issuer is
// `http://127.0.0.1:<n>`. `import 'oidc-provider'` resolves from the folder named by
// $LINKRUN_OIDC_NODE_MODULES (tests/common/oidc.rs points it at its `npm ci` cache), else from
// beside this file (run `npm ci` here to use it by hand).
//
// CONFIG:
//   {"clients": [{"client_id": "app", "client_secret": "s3cret",
//                 "redirect_uris": ["http://127.0.0.1:9/callback"],
//                 "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
//                 "token_endpoint_auth_method": "client_secret_post" | "client_secret_basic" | "none",
//                 "scope": "openid offline_access api:read api:write",
//                 ...any other client metadata, e.g. "application_type": "native"}],
//    "access_token_ttl": 3,            // seconds, every access token (default 3600)
//    "client_credentials_ttl": 3,      // seconds (default: access_token_ttl)
//    "refresh_token_ttl": 86400,       // seconds (default 86400)
//    "rotate_refresh_token": true,     // default true
//    "strict_client_auth": true,       // default true (see below)
//    "scopes": ["extra:scope"]}        // more scopes to accept (each client's `scope` is added)
//
// Behaviour (see also the module docs of tests/common/oidc.rs):
// - authorization code flow only with PKCE S256 (every client, public or confidential);
// - a refresh token for every authorization_code grant of a client allowed `refresh_token`, with
//   or without `offline_access`; tokens never expire with the login session;
// - opaque access tokens for every grant; clockTolerance 0, so a token is refused the second its
//   TTL ends;
// - scopes: `openid`, `offline_access`, every client's `scope` values and `scopes` are accepted
//   (client_credentials included; resource indicators are off); unknown scopes are dropped;
// - login and consent: oidc-provider's devInteractions (any login and password; consent grants
//   every requested scope);
// - oidc-provider takes client_secret_basic and client_secret_post from either kind of client;
//   with `strict_client_auth` (the default) a request to /token, /token/revocation or
//   /token/introspection that presents the other secret method than the client's registered
//   `token_endpoint_auth_method` is refused here, before oidc-provider sees it, with oidc-provider's
//   own invalid_client answer (401 {"error":"invalid_client","error_description":"client
//   authentication failed"}, plus `WWW-Authenticate: Basic ...` when Basic was presented).
//
// Extra routes:
//   any method /api/*   the protected resource: `Authorization: Bearer T` (or `?access_token=T`);
//                        200 {"ok":true,"client_id","scope","sub","kind","token_in","method","path","query"}
//                        (`kind` "AccessToken" or "ClientCredentials"; `sub` null for the latter;
//                        `token_in` "header" or "query"; `query` without access_token), or, when
//                        the token is missing, unknown, expired or revoked, 401
//                        {"error":"invalid_token"} + WWW-Authenticate: Bearer error="invalid_token"
//   GET /_stats          {"token": {GRANT: {"ok": n, "failed": n}}, "token_errors": {ERROR: n},
//                         "revocation": {"ok": n, "failed": n}, "introspection": {"ok": n, "failed": n},
//                         "api": {"ok": n, "unauthorized": n}, "grants_revoked": n,
//                         "requests": [{"endpoint": "token"|"revocation"|"introspection",
//                                       "grant_type", "client_id", "client_auth", "scope",
//                                       "token_type_hint", "status", "error", "error_detail"}]}
//                        (`requests`: the last 200, oldest first, no secrets, codes or tokens;
//                        `client_auth` is what the request presented: client_secret_basic,
//                        client_secret_post, client_assertion or none; `error_detail` is
//                        oidc-provider's internal reason, e.g. "refresh token already used")
//   POST /_stats/reset   zeroes the counters (the provider's tokens are kept)
//   POST /_tokens/expire every access token used at /api/* so far is refused there from now on
//                        (401 invalid_token), as if it had expired: tests move time forward
//                        instead of sleeping; tokens issued later are not affected

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

async function loadProvider() {
  const dir = process.env.LINKRUN_OIDC_NODE_MODULES;
  if (dir) {
    const require = createRequire(path.join(dir, 'noop.js'));
    const entry = require.resolve('oidc-provider');
    return (await import(pathToFileURL(entry).href)).default;
  }
  return (await import('oidc-provider')).default;
}

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: node provider.mjs CONFIG.json\n');
  process.exit(2);
}
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const Provider = await loadProvider();

const accessTokenTtl = config.access_token_ttl ?? 3600;
const clientCredentialsTtl = config.client_credentials_ttl ?? accessTokenTtl;
const refreshTokenTtl = config.refresh_token_ttl ?? 86400;
const strictClientAuth = config.strict_client_auth ?? true;
// Clients that may skip PKCE (to test exchanging a code obtained elsewhere, without a verifier).
const pkceOptional = new Set(config.pkce_optional_clients ?? []);

const scopes = new Set(['openid', 'offline_access', ...(config.scopes ?? [])]);
const clients = (config.clients ?? []).map((c) => {
  const client = { ...c };
  for (const s of (client.scope ?? '').split(' ')) {
    if (s) scopes.add(s);
  }
  client.grant_types ??= ['authorization_code', 'refresh_token'];
  client.response_types ??= client.grant_types.includes('authorization_code') ? ['code'] : [];
  client.redirect_uris ??= [];
  return client;
});

const fresh = () => ({
  token: {
    authorization_code: { ok: 0, failed: 0 },
    refresh_token: { ok: 0, failed: 0 },
    client_credentials: { ok: 0, failed: 0 },
  },
  token_errors: {},
  revocation: { ok: 0, failed: 0 },
  introspection: { ok: 0, failed: 0 },
  api: { ok: 0, unauthorized: 0 },
  grants_revoked: 0,
  requests: [],
});
let stats = fresh();

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'linkrun-test', use: 'sig', alg: 'RS256' };

// The issuer needs the port, and the port is known once listening: bind first, then build the
// provider and hand requests to it.
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const { createServer } = await import('node:http');
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients,
  scopes: [...scopes],
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  clockTolerance: 0,
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated client may introspect (oidc-provider's default, made explicit); a
      // public client only its own tokens.
      allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === ctx.oidc.client.clientId,
    },
    revocation: {
      enabled: true,
      // A client may revoke only its own tokens (oidc-provider's default, made explicit).
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    resourceIndicators: { enabled: false },
  },
  pkce: { required: (_ctx, client) => !pkceOptional.has(client.clientId) },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  rotateRefreshToken: config.rotate_refresh_token ?? true,
  ttl: {
    AccessToken: accessTokenTtl,
    ClientCredentials: clientCredentialsTtl,
    RefreshToken: refreshTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: 86400,
    Grant: 14 * 86400,
  },
});

provider.on('grant.revoked', () => {
  stats.grants_revoked += 1;
});
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`server_error: ${err?.stack ?? err}\n`);
});
for (const event of ['grant.error', 'revocation.error', 'introspection.error', 'authorization.error']) {
  provider.on(event, (_ctx, err) => {
    process.stderr.write(`${event}: ${err?.error ?? ''} ${err?.error_description ?? ''} ${err?.error_detail ?? ''}\n`);
  });
}

function json(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = JSON.stringify(body);
}

async function findBearer(value) {
  if (!value) return undefined;
  const at = await provider.AccessToken.find(value);
  if (at) {
    // As the userinfo endpoint does: a token whose grant is gone is no longer valid.
    if (at.grantId && !(await provider.Grant.find(at.grantId))) return undefined;
    return at;
  }
  return provider.ClientCredentials.find(value);
}

// Access tokens seen at /api/*, and those `POST /_tokens/expire` has made expired.
const seenTokens = new Set();
const expiredTokens = new Set();

async function resource(ctx) {
  const auth = ctx.get('authorization');
  let value;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (m) value = m[1];
  else if (!auth && typeof ctx.query.access_token === 'string') value = ctx.query.access_token;
  const token = expiredTokens.has(value) ? undefined : await findBearer(value);
  if (token) seenTokens.add(value);
  if (!token) {
    stats.api.unauthorized += 1;
    ctx.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    json(ctx, 401, { error: 'invalid_token' });
    return;
  }
  stats.api.ok += 1;
  // The query is echoed without the token, so that the token appears in no answer.
  const query = new URLSearchParams(ctx.querystring);
  query.delete('access_token');
  json(ctx, 200, {
    ok: true,
    client_id: token.clientId,
    scope: token.scope ?? '',
    sub: token.accountId ?? null,
    kind: token.kind,
    token_in: m ? 'header' : 'query',
    method: ctx.method,
    path: ctx.path,
    query: query.toString(),
  });
}

const ENDPOINTS = new Map([['/token', 'token'], ['/token/revocation', 'revocation'], ['/token/introspection', 'introspection']]);
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);
const LOG_MAX = 200;

async function readRaw(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 56 * 1024) throw new Error('request entity too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// The client authentication a request presents: `client_secret_basic`, `client_secret_post`,
// `client_assertion` or `none`, and the client_id it names.
function presentedAuth(ctx, params) {
  const auth = ctx.get('authorization');
  if (/^basic\s/i.test(auth)) {
    let clientId = params.get('client_id');
    try {
      const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
      clientId = decodeURIComponent(decoded.slice(0, decoded.indexOf(':')).replace(/\+/g, ' '));
    } catch { /* oidc-provider answers it */ }
    return { method: 'client_secret_basic', clientId };
  }
  if (params.get('client_secret')) return { method: 'client_secret_post', clientId: params.get('client_id') };
  if (params.get('client_assertion')) return { method: 'client_assertion', clientId: params.get('client_id') };
  return { method: 'none', clientId: params.get('client_id') };
}

function record(ctx, entry) {
  const ok = ctx.status >= 200 && ctx.status < 300;
  let error = null;
  if (!ok) {
    try {
      error = JSON.parse(typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body)).error ?? 'unknown';
    } catch {
      error = 'unknown';
    }
  }
  if (entry.endpoint === 'token') {
    const grant = entry.grant_type ?? 'unknown';
    stats.token[grant] ??= { ok: 0, failed: 0 };
    stats.token[grant][ok ? 'ok' : 'failed'] += 1;
    if (error) stats.token_errors[error] = (stats.token_errors[error] ?? 0) + 1;
  } else {
    stats[entry.endpoint][ok ? 'ok' : 'failed'] += 1;
  }
  stats.requests.push({
    ...entry,
    status: ctx.status,
    error,
    error_detail: error ? (ctx.state.linkrunError?.error_detail ?? null) : null,
  });
  if (stats.requests.length > LOG_MAX) stats.requests.shift();
}

for (const event of ['grant.error', 'revocation.error', 'introspection.error']) {
  provider.on(event, (ctx, err) => {
    if (ctx?.state) ctx.state.linkrunError = err;
  });
}

// The token, revocation and introspection endpoints: the body is read here (oidc-provider then
// takes the already-read body), the request is checked against the client's registered
// authentication method, counted and logged (without secrets, codes or tokens).
async function endpoint(ctx, next, name) {
  const raw = await readRaw(ctx.req);
  ctx.request.body = raw;
  const params = new URLSearchParams(ctx.is('application/x-www-form-urlencoded') ? raw.toString('utf8') : '');
  const { method, clientId } = presentedAuth(ctx, params);
  const entry = {
    endpoint: name,
    grant_type: name === 'token' ? (params.get('grant_type') ?? null) : null,
    client_id: clientId ?? null,
    client_auth: method,
    scope: params.get('scope'),
    token_type_hint: params.get('token_type_hint'),
  };
  if (strictClientAuth && clientId && SECRET_METHODS.has(method)) {
    const client = await provider.Client.find(clientId);
    if (client && SECRET_METHODS.has(client.clientAuthMethod) && client.clientAuthMethod !== method) {
      ctx.state.linkrunError = {
        error_detail: `the client is registered for ${client.clientAuthMethod}, the request used ${method}`,
      };
      if (method === 'client_secret_basic') {
        ctx.set('WWW-Authenticate', `Basic realm="${issuer}", error="invalid_client", error_description="client authentication failed"`);
      }
      json(ctx, 401, { error: 'invalid_client', error_description: 'client authentication failed' });
      process.stderr.write(`${name}: invalid_client ${ctx.state.linkrunError.error_detail}\n`);
      record(ctx, entry);
      return;
    }
  }
  await next();
  record(ctx, entry);
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/api' || ctx.path.startsWith('/api/')) {
    await resource(ctx);
    return;
  }
  if (ctx.path === '/_stats' && ctx.method === 'GET') {
    json(ctx, 200, stats);
    return;
  }
  if (ctx.path === '/_tokens/expire' && ctx.method === 'POST') {
    for (const t of seenTokens) expiredTokens.add(t);
    json(ctx, 200, { expired: expiredTokens.size });
    return;
  }
  if (ctx.path === '/_stats/reset' && ctx.method === 'POST') {
    stats = fresh();
    json(ctx, 200, stats);
    return;
  }
  if (ctx.method === 'POST' && ENDPOINTS.has(ctx.path)) {
    await endpoint(ctx, next, ENDPOINTS.get(ctx.path));
    return;
  }
  await next();
});

handler = provider.callback();
process.stdout.write(`PORT ${port}\n`);

// Exit when the test process that started us goes away (when our stdin is a pipe, it is that
// process's), or on a signal.
if (fs.fstatSync(0).isFIFO()) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => process.exit(0));
