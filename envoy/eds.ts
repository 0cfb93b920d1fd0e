/**
 * EDS files: the endpoints Envoy watches on disk (the pods of service
 * eds:<path>, and the mcp-pin replicas), written atomically so Envoy never
 * reads half a file.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { isSocketPath, type ExtProcEndpoint } from './params.js';

/** An EDS file: the pods (resource mcp_service), or the mcp-pin replicas (mcp_pin: host:port or Unix sockets). */
export function renderEds(pods: ExtProcEndpoint[], resource: 'mcp_service' | 'mcp_pin' = 'mcp_service'): string {
  return JSON.stringify(
    {
      version_info: String(Date.now()),
      resources: [
        {
          '@type': 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
          cluster_name: resource,
          endpoints: [
            {
              lb_endpoints: pods.map((p) => ({
                endpoint: { address: isSocketPath(p) ? { pipe: { path: p.path } } : { socket_address: { address: p.host, port_value: p.port } } },
              })),
            },
          ],
        },
      ],
    },
    null,
    2,
  );
}

/**
 * Whole file or nothing: written beside the target, then renamed over it, so
 * Envoy's file watch (watched_directory) sees one complete file, never a
 * half-written one. For EDS files and rendered configs.
 */
export function writeFileAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
