/**
 * The metrics port (--metrics-listen): /metrics for a scraper, /healthz for
 * the kubelet (a kubelet cannot probe a Unix socket, where mcp-pin's gRPC
 * health lives in the shipped deployments). Nothing else is served.
 */
import { createServer, type Server } from 'node:http';
import type { Health } from './health.js';
import type { Metrics } from './metrics.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(at: { host: string; port: number }, metrics: Metrics, health: Health): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    } else if (req.url === '/healthz') {
      const ok = health.current === 'SERVING';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'SERVING\n' : 'NOT_SERVING\n');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : at.port);
    });
  });
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
