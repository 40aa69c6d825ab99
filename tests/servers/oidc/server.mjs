// A real OpenID Connect provider (npm "oidc-provider") on 127.0.0.1 for dirac-seed's token tests.
//
// Started by oidc.sh, which passes the state directory (OIDC_STATE_DIR) holding the TLS
// certificate and key, the client secrets and the signing key; the server listens on a free
// port over HTTPS and writes its issuer URL to <state>/issuer once it accepts connections.
//
// Clients: dirac-cli (public: device_code, refresh_token), dirac-server and dirac-pilot
// (confidential: client_credentials, refresh_token), dirac-web (the web portal, confidential: authorization code
// with PKCE, refresh_token; any https loopback redirect URI ending in /login/callback). Access tokens for the resource
// "dirac" are JWTs (ES256, or RS256 with OIDC_ACCESS_TOKEN_ALG=RS256) with the audience "dirac" and the users' wlcg.groups,
// eduperson_entitlement, preferred_username and email claims. The device flow's browser step is a plain HTML form
// round trip (user code, confirm, login, consent), so an HTTP client can complete it.

import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';

import Provider from 'oidc-provider';

const state = process.env.OIDC_STATE_DIR;
if (!state) throw new Error('OIDC_STATE_DIR is not set');
const read = (name) => readFileSync(path.join(state, name), 'utf8');
const secrets = JSON.parse(read('clients.json'));
const signingKey = JSON.parse(read('signing-key.jwk.json'));
const rsaSigningKey = JSON.parse(read('signing-key-rs256.jwk.json'));
const accessTokenTTL = Number(process.env.OIDC_ACCESS_TOKEN_TTL || 300);
const accessTokenAlg = process.env.OIDC_ACCESS_TOKEN_ALG || 'ES256';
if (!['ES256', 'RS256'].includes(accessTokenAlg)) throw new Error(`OIDC_ACCESS_TOKEN_ALG ${accessTokenAlg}: ES256 or RS256`);
const RESOURCE = 'https://dirac.invalid/';
const AUDIENCE = 'dirac';

// Test users: login name -> password and claims. "sub" is the stable subject DIRAC registers.
const USERS = {
  alice: {
    password: 'alice-password',
    claims: {
      sub: 'a1b2c3d4-alice', name: 'Alice Test', preferred_username: 'alice', email: 'alice@example.invalid',
      'wlcg.groups': ['/dirac', '/dirac/user', '/dirac/admin'],
      eduperson_entitlement: ['urn:mace:egi.eu:group:dirac:role=member#aai.egi.eu'],
    },
  },
  bob: {
    password: 'bob-password',
    claims: {
      sub: 'e5f6a7b8-bob', name: 'Bob Test', preferred_username: 'bob', email: 'bob@example.invalid',
      'wlcg.groups': ['/dirac', '/dirac/user'],
      eduperson_entitlement: [],
    },
  },
  // not in DIRAC's Registry: registered at her first call where the provider has RegisterUsers
  carol: {
    password: 'carol-password',
    claims: {
      sub: 'c9d0e1f2-carol', name: 'Carol Test', preferred_username: 'Carol', email: 'carol@example.invalid',
      'wlcg.groups': ['/dirac', '/dirac/user'],
      eduperson_entitlement: [],
    },
  },
};
const bySub = Object.fromEntries(Object.values(USERS).map((u) => [u.claims.sub, u]));
// Groups that client_credentials tokens carry, by client.
const CLIENT_GROUPS = { 'dirac-pilot': ['/dirac/pilot'], 'dirac-server': ['/dirac/service'] };

const GROUP_SCOPE = /^group:[A-Za-z0-9_.-]+$/;
const BASE_SCOPES = ['wlcg.groups', 'eduperson_entitlement'];

const html = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>`
  + `<body><h1>${title}</h1>${body}</body></html>`;
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const server = https.createServer({ key: read('server-key.pem'), cert: read('server-cert.pem') });
await new Promise((resolve) => { server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', resolve); });
const issuer = `https://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    { client_id: 'dirac-cli', token_endpoint_auth_method: 'none', application_type: 'native',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [],
      redirect_uris: [], client_name: 'DIRAC command line' },
    { client_id: 'dirac-server', client_secret: secrets['dirac-server'],
      grant_types: ['client_credentials', 'refresh_token'], response_types: [], redirect_uris: [] },
    { client_id: 'dirac-pilot', client_secret: secrets['dirac-pilot'],
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
    { client_id: 'dirac-web', client_secret: secrets['dirac-web'], client_name: 'DIRAC web portal',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: ['https://127.0.0.1/DIRAC/login/callback'] },
  ],
  jwks: { keys: [signingKey, rsaSigningKey] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  cookies: { keys: [secrets.cookies] },
  scopes: ['openid', 'offline_access', 'profile', 'email', ...BASE_SCOPES],
  claims: {
    openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'],
    'wlcg.groups': ['wlcg.groups'], eduperson_entitlement: ['eduperson_entitlement'],
  },
  ttl: {
    AccessToken: accessTokenTTL, ClientCredentials: accessTokenTTL, DeviceCode: 600, Grant: 3600,
    IdToken: 3600, Interaction: 600, RefreshToken: 14 * 24 * 3600, Session: 3600,
  },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form, out, err) => {
        ctx.body = html('Device login', `${err ? '<p class="error">wrong or expired code</p>' : ''}${form}`
          + '<button type="submit" form="op.deviceInputForm">Continue</button>');
      },
      userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
        ctx.body = html('Confirm device', `<p>${escape(client.clientId)} asks for access; code `
          + `<code>${escape(userCode)}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
      },
      successSource: async (ctx) => { ctx.body = html('Signed in', '<p id="success">You may close this page.</p>'); },
    },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, indicator) => {
        if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
        // group:<name> scopes pass through: DIRAC checks them against the groups claims
        const { DeviceCode, RefreshToken, Grant } = ctx.oidc.entities;
        const asked = [ctx.oidc.params?.scope, DeviceCode?.scope, RefreshToken?.scope, Grant?.getResourceScope(indicator)];
        const requested = asked.join(' ').split(' ').filter((s) => GROUP_SCOPE.test(s));
        return { scope: [...BASE_SCOPES, ...requested].join(' '), audience: AUDIENCE, accessTokenTTL,
          accessTokenFormat: 'jwt', jwt: { sign: { alg: accessTokenAlg } } };
      },
    },
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  findAccount: async (ctx, sub) => {
    const user = bySub[sub];
    if (!user) return undefined;
    return { accountId: sub, claims: async () => ({ ...user.claims }) };
  },
  extraTokenClaims: async (ctx, token) => {
    if (token.kind === 'ClientCredentials') {
      return { sub: token.clientId, 'wlcg.groups': CLIENT_GROUPS[token.clientId] || [] };
    }
    const user = bySub[token.accountId];
    if (!user) return undefined;
    return { 'wlcg.groups': user.claims['wlcg.groups'], eduperson_entitlement: user.claims.eduperson_entitlement,
      preferred_username: user.claims.preferred_username, email: user.claims.email };
  },
  interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => { ctx.type = 'html'; ctx.body = html('Error', `<pre>${escape(out.error)}: ${escape(out.error_description || '')}</pre>`); },
});
provider.proxy = false;

// The portal and DIRAC's authorization server under test listen on a port chosen at run time: their client
// (dirac-web) accepts any loopback https callback: the portal's .../login/callback, the server's /auth/redirect.
const WEB_CALLBACK = /^https:\/\/(127\.0\.0\.1|localhost):[0-9]+\/([A-Za-z0-9_/-]*\/login\/callback|auth\/redirect)$/;
const { redirectUriAllowed } = provider.Client.prototype;
provider.Client.prototype.redirectUriAllowed = function allowed(value) {
  return (this.clientId === 'dirac-web' && WEB_CALLBACK.test(value)) || redirectUriAllowed.call(this, value);
};

async function formBody(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return Object.fromEntries(new URLSearchParams(data));
}

// The interaction pages: login (POST .../login with login and password), then consent (POST .../confirm).
async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params } = details;
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html');
    if (prompt.name === 'login') {
      res.end(html('Sign in', `<form method="post" action="/interaction/${uid}/login">`
        + '<input name="login"><input name="password" type="password"><button type="submit">Sign in</button></form>'));
    } else {
      res.end(html('Authorize', `<p>${escape(params.client_id)} asks for ${escape(params.scope || '')}</p>`
        + `<form method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>`));
    }
    return;
  }
  const form = await formBody(req);
  if (action === 'login') {
    const user = USERS[form.login];
    if (!user || user.password !== form.password) {
      res.statusCode = 403;
      res.setHeader('Content-Type', 'text/html');
      res.end(html('Sign in', '<p class="error">invalid login or password</p>'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.claims.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'confirm') {
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  res.statusCode = 404;
  res.end();
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?\/?(?:\?.*)?$/.exec(req.url);
  if (!match) {
    callback(req, res);
    return;
  }
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    console.error(`interaction ${match[1]}: ${err.name}: ${err.message}`);
    res.statusCode = 400;
    res.setHeader('Content-Type', 'text/html');
    res.end(html('Error', `<pre>${escape(err.message)}</pre>`));
  }
});

// One log line per token event, without the tokens.
provider.on('grant.success', (ctx) => console.log(`grant ${ctx.oidc.params.grant_type} client=${ctx.oidc.client?.clientId}`));
provider.on('grant.error', (ctx, err) => console.log(`grant error client=${ctx.oidc.client?.clientId}: ${err.message}`));
provider.on('server_error', (ctx, err) => console.error(`server error: ${err.stack}`));

writeFileSync(path.join(state, 'issuer'), issuer);
console.log(`OpenID Connect provider ${issuer} ready (access tokens ${accessTokenAlg}, live ${accessTokenTTL} s)`);
