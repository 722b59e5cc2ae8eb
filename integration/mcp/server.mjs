// The MCP server of the MCP end-to-end test (integration/mcp_test.go): a
// Streamable HTTP MCP server at /mcp, built with the official SDK, that sits
// upstream of Envoy and zitadel-ext-authz. It does no OAuth of its own: it
// trusts the identity headers our ext_authz server sets (Envoy removes any a
// caller sends), as an upstream behind Envoy does.
//
// Its one tool, whoami, answers with those headers, so a test can see who
// the MCP client reached the server as.
//
//   node server.mjs [--port N]    (default 0: any free port)
//
// The first line on stdout is "listening http://127.0.0.1:PORT".
import http from 'node:http';
import { parseArgs } from 'node:util';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

const { values: args } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

// newServer is one MCP server with the whoami tool. The transport is
// stateless (no mcp-session-id), so each HTTP request gets a server of its
// own, as the SDK's stateless examples do.
function newServer() {
    const server = new McpServer({ name: 'zitadel-ext-authz-mcp-e2e', version: '1.0.0' });
    server.registerTool(
        'whoami',
        { description: 'Who the authorization proxy says the caller is (the x-forwarded-* headers it sets).' },
        async (extra) => {
            const h = extra.requestInfo?.headers ?? {};
            const who = {
                user: h['x-forwarded-user'] ?? null,
                email: h['x-forwarded-email'] ?? null,
                groups: h['x-forwarded-groups'] ?? null
            };
            return { content: [{ type: 'text', text: JSON.stringify(who) }] };
        }
    );
    return server;
}

const httpServer = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://upstream').pathname;
    if (path !== '/mcp') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
    }
    if (req.method !== 'POST') {
        // Stateless: no server-initiated stream (GET) and no session to end
        // (DELETE); the client takes 405 for "not offered".
        res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('method not allowed\n');
        return;
    }
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
        transport.close();
        server.close();
    });
    try {
        await server.connect(transport);
        await transport.handleRequest(req, res);
    } catch (err) {
        console.error('mcp request:', err);
        if (!res.headersSent) {
            res.writeHead(500, { 'content-type': 'application/json' }).end(
                JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null })
            );
        }
    }
});

httpServer.listen(Number(args.port), '127.0.0.1', () => {
    const { port } = httpServer.address();
    console.log(`listening http://127.0.0.1:${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => httpServer.close(() => process.exit(0)));
}
