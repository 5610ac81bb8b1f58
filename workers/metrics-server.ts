import { createServer } from 'node:http';
import type { ServerResponse, Server } from 'node:http';
import type { Registry } from 'prom-client';
import { redactSecrets } from '../pipeline/config/index.js';

/** What `/readyz` reports: overall readiness plus one entry per dependency (see `checkReadiness`). */
export interface ReadinessResult {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, { readonly ok: boolean; readonly ms: number; readonly error?: string }>>;
}

export interface MetricsServerOptions {
  /**
   * Probes the process's dependencies for `/readyz`. Without one, `/readyz` answers like
   * `/healthz` (ready as soon as the process is up).
   */
  readonly readiness?: () => Promise<ReadinessResult>;
}

/**
 * Serves on host:port (port 0 = any free port; read it from `server.address()`):
 * - `/metrics` — Prometheus text of `registry`;
 * - `/healthz` — 200 while the process is up;
 * - `/readyz` — 200 with the JSON report when every dependency answers, else 503 with the same
 *   JSON naming the failing one. Concurrent probes share one round of checks.
 */
export async function startMetricsServer(registry: Registry, host: string, port: number, options: MetricsServerOptions = {}): Promise<Server> {
  let probing: Promise<ReadinessResult> | undefined;
  const probe = (): Promise<ReadinessResult> => {
    const readiness = options.readiness;
    if (!readiness) return Promise.resolve({ ready: true, checks: {} });
    probing ??= readiness().finally(() => {
      probing = undefined;
    });
    return probing;
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${redactSecrets(err.message)}\n`);
        },
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else if (path === '/readyz') {
      probe().then(
        (result) => sendJson(res, result.ready ? 200 : 503, result),
        (err: unknown) => sendJson(res, 503, { ready: false, checks: {}, error: redactSecrets(err instanceof Error ? err.message : String(err)) }),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /metrics, /healthz or /readyz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}
