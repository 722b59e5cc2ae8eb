// The MCP client of the MCP end-to-end test (integration/mcp_test.go): the
// official SDK's Client and StreamableHTTPClientTransport, with an
// OAuthClientProvider for a client registered at the authorization server
// beforehand (no dynamic registration). It is given only the MCP server's
// URL; the SDK finds the rest on its own:
//
//  1. its first request gets 401 with WWW-Authenticate: Bearer ...
//     resource_metadata="<url>";
//  2. it reads that RFC 9728 protected-resource metadata;
//  3. it fetches the metadata of the authorization server the document
//     names (RFC 8414, else OpenID Connect discovery);
//  4. it sends the user to the authorization endpoint (code flow, PKCE,
//     RFC 8707 resource). Here this script plays the user: it follows the
//     redirects, fills in the login form it is shown, and lands on the
//     redirect URI, a loopback listener of this script (RFC 8252 §7.3);
//     the SDK then exchanges the code (finishAuth);
//  5. it connects again with the access token, lists the tools and calls
//     whoami.
//
//   node client.mjs <mcp server url> --client-id ID --username U --password P
//                   [--client-secret S] [--issuer URL] [--scope "openid ..."]
//
// --issuer binds the pre-registered client to that authorization server:
// the SDK then refuses to present it to any other it discovers.
//
// Prints one JSON object on stdout: every HTTP request the SDK made (method,
// URL, status, WWW-Authenticate), the hops of the sign-in, what discovery
// found, the tools and whoami's answer; with "error" and exit status 1 when
// a step failed. Codes, tokens and secrets are never printed.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const { values: args, positionals } = parseArgs({
    allowPositionals: true,
    options: {
        'client-id': { type: 'string' },
        'client-secret': { type: 'string' },
        issuer: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        scope: { type: 'string', default: 'openid profile email' },
        timeout: { type: 'string', default: '60' } // seconds for the whole run
    }
});

const report = { requests: [], signIn: [] };

function finish(error) {
    if (error) {
        report.error = String(error?.stack ?? error);
    }
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exit(error ? 1 : 0);
}

if (positionals.length !== 1 || !args['client-id'] || !args.username || !args.password) {
    console.error('usage: node client.mjs <mcp server url> --client-id ID --username U --password P [--client-secret S] [--issuer URL]');
    process.exit(2);
}
const serverUrl = new URL(positionals[0]);
setTimeout(() => finish(new Error(`not done within ${args.timeout}s`)), Number(args.timeout) * 1000).unref();

// redact drops the values of query parameters that carry secrets.
function redact(raw) {
    const u = new URL(raw);
    for (const k of ['code', 'code_verifier', 'access_token', 'id_token', 'refresh_token']) {
        if (u.searchParams.has(k)) u.searchParams.set(k, 'REDACTED');
    }
    return u.href;
}

// recordingFetch is the fetch the SDK uses for the MCP server and the
// authorization server alike; it notes each request.
async function recordingFetch(input, init) {
    const url = input instanceof Request ? input.url : String(input);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const res = await fetch(input, init);
    report.requests.push({
        method,
        url: redact(url),
        status: res.status,
        wwwAuthenticate: res.headers.get('www-authenticate') ?? undefined
    });
    return res;
}

// callbackListener is the redirect URI: a loopback HTTP listener that
// takes the authorization response (RFC 8252 §7.3).
async function callbackListener() {
    let deliver;
    const received = new Promise((resolve) => (deliver = resolve));
    const server = http.createServer((req, res) => {
        const u = new URL(req.url, 'http://127.0.0.1');
        if (u.pathname !== '/callback') {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('Signed in; you can close this window.\n');
        deliver(u.searchParams);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${server.address().port}/callback`, received, close: () => server.close() };
}

// Provider is an in-memory OAuthClientProvider for a pre-registered client.
class Provider {
    constructor(redirectUrl, clientInformation, scope) {
        this._redirectUrl = redirectUrl;
        this._client = clientInformation;
        this._scope = scope;
    }
    get redirectUrl() {
        return this._redirectUrl;
    }
    get clientMetadata() {
        return {
            client_name: 'zitadel-ext-authz MCP end-to-end test',
            redirect_uris: [this._redirectUrl],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: this._client.client_secret ? 'client_secret_basic' : 'none',
            scope: this._scope
        };
    }
    state() {
        this.sentState = randomBytes(16).toString('base64url');
        return this.sentState;
    }
    clientInformation() {
        return this._client;
    }
    tokens() {
        return this._tokens;
    }
    saveTokens(tokens) {
        this._tokens = tokens;
    }
    saveCodeVerifier(v) {
        this._verifier = v;
    }
    codeVerifier() {
        return this._verifier;
    }
    redirectToAuthorization(url) {
        this.authorizationUrl = url;
    }
    saveDiscoveryState(state) {
        this._discovery = state;
    }
    discoveryState() {
        return this._discovery;
    }
}

// signIn is the user at the browser: it opens the authorization URL,
// follows redirects, fills in the username and password of the login form
// it is shown (its hidden fields kept, posted to its action), once, and
// stops at the redirect URI, which it opens so the listener gets the
// answer.
async function signIn(authorizationUrl, redirectUri, username, password) {
    let url = authorizationUrl.href;
    let init = { method: 'GET' };
    let posted = false;
    for (let hop = 0; hop < 20; hop++) {
        report.signIn.push(`${init.method} ${redact(url)}`);
        if (url.startsWith(redirectUri + '?')) {
            const res = await fetch(url);
            await res.body?.cancel();
            return;
        }
        const res = await fetch(url, { ...init, redirect: 'manual' });
        if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
            await res.body?.cancel();
            url = new URL(res.headers.get('location'), url).href;
            init = { method: 'GET' };
            continue;
        }
        const body = await res.text();
        const form = res.status === 200 && loginForm(body);
        if (!form) {
            throw new Error(`sign-in: ${init.method} ${redact(url)}: status ${res.status}, no login form: ${text(body)}`);
        }
        if (posted) {
            throw new Error(`sign-in: the login form came back after the credentials were posted (wrong username or password?): ${text(body)}`);
        }
        posted = true;
        form.fields.set('username', username);
        form.fields.set('password', password);
        url = new URL(form.action || url, url).href;
        init = {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: form.fields.toString()
        };
    }
    throw new Error('sign-in: more than 20 hops');
}

// loginForm finds the first form with a password field: its action and
// its hidden fields.
function loginForm(html) {
    for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
        const [, attrs, inner] = m;
        if (!/type="password"|name="password"/i.test(inner)) continue;
        const fields = new URLSearchParams();
        for (const input of inner.matchAll(/<input\b[^>]*>/gi)) {
            const tag = input[0];
            if (!/type="hidden"/i.test(tag)) continue;
            const name = /name="([^"]*)"/i.exec(tag)?.[1];
            if (name) fields.set(name, unescapeHTML(/value="([^"]*)"/i.exec(tag)?.[1] ?? ''));
        }
        return { action: unescapeHTML(/action="([^"]*)"/i.exec(attrs)?.[1] ?? ''), fields };
    }
    return null;
}

// text is a page's visible text, shortened, for an error message.
function text(html) {
    return unescapeHTML(html.replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' '))
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 300);
}

function unescapeHTML(s) {
    return s
        .replaceAll('&#34;', '"')
        .replaceAll('&quot;', '"')
        .replaceAll('&#39;', "'")
        .replaceAll('&lt;', '<')
        .replaceAll('&gt;', '>')
        .replaceAll('&amp;', '&');
}

async function main() {
    const callback = await callbackListener();
    try {
        const clientInformation = { client_id: args['client-id'] };
        if (args['client-secret']) clientInformation.client_secret = args['client-secret'];
        if (args.issuer) clientInformation.issuer = args.issuer;
        const provider = new Provider(callback.url, clientInformation, args.scope);
        const clientInfo = { name: 'zitadel-ext-authz-mcp-e2e-client', version: '1.0.0' };

        // 1–4: the first connection is refused; the SDK discovers the
        // authorization server and asks for the user's sign-in.
        const first = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch });
        try {
            await new Client(clientInfo).connect(first);
            throw new Error('connected without signing in: the MCP server is not protected');
        } catch (err) {
            if (!(err instanceof UnauthorizedError)) throw err;
        }
        if (!provider.authorizationUrl) throw new Error('the SDK never asked for a sign-in');
        const discovery = provider.discoveryState() ?? {};
        report.discovery = {
            authorizationServerUrl: discovery.authorizationServerUrl,
            resource: discovery.resourceMetadata?.resource,
            authorizationServers: discovery.resourceMetadata?.authorization_servers,
            issuer: discovery.authorizationServerMetadata?.issuer,
            authorizationEndpoint: discovery.authorizationServerMetadata?.authorization_endpoint,
            tokenEndpoint: discovery.authorizationServerMetadata?.token_endpoint
        };
        const az = new URL(provider.authorizationUrl);
        report.authorizationRequest = {
            endpoint: az.origin + az.pathname,
            params: Object.fromEntries([...az.searchParams].filter(([k]) => k !== 'code_challenge' && k !== 'state'))
        };

        await signIn(az, callback.url, args.username, args.password);
        const answer = await callback.received;
        if (answer.get('error')) throw new Error(`authorization error: ${answer.get('error')}: ${answer.get('error_description')}`);
        if (answer.get('state') !== provider.sentState) throw new Error('the authorization response has a state this client never sent');
        await first.finishAuth(answer.get('code'));
        await first.close();
        const tokens = provider.tokens();
        report.token = { type: tokens?.token_type, scope: tokens?.scope, expiresIn: tokens?.expires_in, issuer: tokens?.issuer };

        // 5: connected with the access token, the tool call reaches the
        // server as the user.
        const client = new Client(clientInfo);
        await client.connect(new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: recordingFetch }));
        report.tools = (await client.listTools()).tools.map((t) => t.name);
        const result = await client.callTool({ name: 'whoami', arguments: {} });
        const text = result.content?.find((c) => c.type === 'text')?.text;
        report.whoami = text ? JSON.parse(text) : result;
        await client.close();
    } finally {
        callback.close();
    }
}

main().then(() => finish(), finish);
