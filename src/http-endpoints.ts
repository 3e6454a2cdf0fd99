import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CorralError, ExitCode } from './exit-codes.js';
import type { TcpAddress } from './observability-options.js';

export interface EndpointSources {
  /** Prometheus text, with its content type. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Whether corral should get traffic: a worker is ready and corral is not shutting down. */
  ready(): boolean;
}

/**
 * The HTTP endpoints of `--metrics-bind`: /metrics (Prometheus), /healthz (the master answers) and
 * /readyz (200 once a worker is ready, 503 while starting and while shutting down), for
 * Kubernetes probes and Docker HEALTHCHECK. It serves on its own port, never the app's.
 */
export class HttpEndpoints {
  private constructor(private readonly server: http.Server) {}

  static async listen(address: TcpAddress, sources: EndpointSources): Promise<HttpEndpoints> {
    const server = http.createServer((request, response) => void respond(request, response, sources));
    // A probe or scraper that holds a connection open must not delay corral's exit.
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const where = address.family === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
        reject(new CorralError(`--metrics-bind ${where}: cannot listen: ${error.code ?? error.message}`, ExitCode.runtime));
      });
      server.listen({ host: address.host, port: address.port, ipv6Only: address.family === 6 }, () => resolve());
    });
    return new HttpEndpoints(server);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function respond(request: http.IncomingMessage, response: http.ServerResponse, sources: EndpointSources): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  const send = (status: number, body: string, contentType = 'text/plain; charset=utf-8') => {
    response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
  };
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(405, 'method not allowed\n');
    return;
  }
  switch (path) {
    case '/metrics':
      try {
        const { contentType, body } = await sources.metrics();
        send(200, body, contentType);
      } catch (error) {
        send(500, `metrics failed: ${(error as Error).message}\n`);
      }
      return;
    case '/healthz':
      send(200, 'ok\n');
      return;
    case '/readyz':
      if (sources.ready()) send(200, 'ready\n');
      else send(503, 'not ready\n');
      return;
    default:
      send(404, 'not found: try /metrics, /healthz or /readyz\n');
  }
}
