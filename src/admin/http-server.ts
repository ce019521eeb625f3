/**
 * The admin HTTP server (node:http): the versioned JSON API under /api/v1, /metrics in the
 * Prometheus text format, and the dashboard's static files (src/admin/web, uPlot from
 * node_modules). Every API request needs `Authorization: Bearer <admin.token>` (compared in
 * constant time); /metrics too unless `admin.metrics_public`. The static files carry no data and
 * are served without it: the dashboard asks for the token once and sends it with each request.
 *
 * Errors are JSON: {"error": {"code": "...", "message": "..."}} with the matching status.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { PosternMetrics } from '../observability/metrics.js';
import type { QueueAdmin } from './queue-admin.js';
import { QueueDepthSampler } from './queue-depth-sampler.js';
import { compilePath, HttpError, type Route } from './route.js';
import { queueRoutesV1 } from './routes/queue-v1.js';
import { statusRoutesV1 } from './routes/status-v1.js';
import { trackRoutesV1 } from './routes/track-v1.js';

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly metricsPublic: boolean;
  readonly admin: QueueAdmin;
  readonly metrics: PosternMetrics | null;
  /** Queue depth for the overview chart; sampled by the server when given. */
  readonly queueCounts?: () => { queued: number; held: number };
  readonly log?: Logger;
  readonly clock?: () => number;
}

/** The package root: two levels above this file, in src/admin and in dist/admin alike. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB_DIR = join(ROOT, 'src', 'admin', 'web');
const UPLOT_DIR = join(ROOT, 'node_modules', 'uplot', 'dist');
const MAX_BODY = 64 * 1024;

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export class AdminServer {
  private readonly server: Server;
  private readonly routes: { route: Route; match: (p: string) => Record<string, string> | null }[];
  private readonly tokenDigest: Buffer;
  readonly depth: QueueDepthSampler;

  constructor(private readonly opts: AdminServerOptions) {
    this.tokenDigest = digest(opts.token);
    this.depth = new QueueDepthSampler(opts.queueCounts ?? (() => ({ queued: 0, held: 0 })), opts.clock ?? Date.now);
    this.routes = [...queueRoutesV1, ...trackRoutesV1, ...statusRoutesV1(this.depth)].map((route) => ({ route, match: compilePath(route.path) }));
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
    this.server.keepAliveTimeout = 5000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    if (this.opts.queueCounts) this.depth.start();
    const addr = this.server.address() as AddressInfo;
    this.opts.log?.info({ address: addr.address, port: addr.port }, 'admin: listening');
    return addr;
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  stop(): Promise<void> {
    this.depth.stop();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!m) return false;
    return timingSafeEqual(digest(m[1]), this.tokenDigest);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname;
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');

    if (path === '/metrics') {
      if (req.method !== 'GET') throw new HttpError(405, 'method-not-allowed', 'GET only');
      if (!this.opts.metricsPublic && !this.authorized(req)) throw unauthorized(res);
      if (!this.opts.metrics) throw new HttpError(404, 'not-found', 'metrics are not collected in this process');
      const text = await this.opts.metrics.text();
      res.writeHead(200, { 'Content-Type': this.opts.metrics.contentType });
      res.end(text);
      return;
    }

    if (path.startsWith('/api/')) {
      if (!this.authorized(req)) throw unauthorized(res);
      for (const { route, match } of this.routes) {
        if (route.method !== req.method) continue;
        const params = match(path);
        if (params === null) continue;
        const body = req.method === 'POST' ? await readJson(req) : undefined;
        const answer = await route.handle({ params, query: url.searchParams, body, admin: this.opts.admin });
        sendJson(res, answer.status ?? 200, answer.json);
        return;
      }
      const known = this.routes.some(({ match }) => match(path) !== null);
      throw known ? new HttpError(405, 'method-not-allowed', `${req.method ?? ''} is not allowed on ${path}`) : new HttpError(404, 'not-found', `no API route ${path}`);
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method-not-allowed', 'GET only');
    await this.serveStatic(path, res);
  }

  /** "/" and the dashboard's pages → index.html (one page, hash routes); /web/… and /vendor/uplot/… files. */
  private async serveStatic(path: string, res: ServerResponse): Promise<void> {
    let file: string | null = null;
    if (path === '/' || path === '/index.html') file = join(WEB_DIR, 'index.html');
    else if (path.startsWith('/web/')) file = inside(WEB_DIR, path.slice('/web/'.length));
    else if (path === '/vendor/uplot/uPlot.iife.min.js') file = join(UPLOT_DIR, 'uPlot.iife.min.js');
    else if (path === '/vendor/uplot/uPlot.min.css') file = join(UPLOT_DIR, 'uPlot.min.css');
    if (file === null) throw new HttpError(404, 'not-found', `no such page ${path}`);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch {
      throw new HttpError(404, 'not-found', `no such file ${path}`);
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
      'Referrer-Policy': 'no-referrer',
    });
    res.end(data);
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: { code: err.code, message: err.message } });
      return;
    }
    this.opts.log?.error({ err }, 'admin: request failed');
    const message = err instanceof Error ? err.message : String(err);
    sendJson(res, 500, { error: { code: 'internal', message } });
  }
}

function unauthorized(res: ServerResponse): HttpError {
  res.setHeader('WWW-Authenticate', 'Bearer realm="postern-admin"');
  return new HttpError(401, 'unauthorized', 'a valid bearer token is required (Authorization: Bearer <admin.token>)');
}

/** A file below `dir`, or null for paths that try to leave it. */
function inside(dir: string, relative: string): string | null {
  const decoded = decodeURIComponent(relative);
  if (decoded.includes('\0')) return null;
  const full = normalize(join(dir, decoded));
  return full.startsWith(dir + sep) ? full : null;
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'too-large', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'bad-json', 'the request body is not JSON');
  }
}
