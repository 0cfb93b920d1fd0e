/**
 * Renders deploy/compose/envoy.yaml and eds.json from the one Envoy template,
 * for docker-compose.yml. `--check` exits 1 if the committed files differ
 * (the test suite runs the same comparison).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ENVOY_DEFAULTS, renderEds, renderEnvoyConfig } from '../envoy/render.js';

/** Fixed addresses of the compose network (docker-compose.yml, network mcp). */
export const COMPOSE = {
  pods: [
    { host: '172.28.0.11', port: 8080 },
    { host: '172.28.0.12', port: 8080 },
  ],
  mcpPin: [
    { host: '172.28.0.21', port: 50051 },
    { host: '172.28.0.22', port: 50051 },
  ],
};

export function renderCompose(): { 'envoy.yaml': string; 'eds.json': string } {
  return {
    'envoy.yaml': renderEnvoyConfig({
      ...ENVOY_DEFAULTS,
      adminAddress: '0.0.0.0',
      listenAddress: '0.0.0.0',
      // Reachable by the mcp-pin containers on the compose network; not published.
      internalAddress: '0.0.0.0',
      extProc: COMPOSE.mcpPin,
      serviceEdsPath: '/etc/envoy/eds/eds.json',
    }),
    'eds.json': renderEds(COMPOSE.pods).replace(/"version_info": "\d+"/, '"version_info": "compose"'),
  };
}

const dir = new URL('../deploy/compose/', import.meta.url);
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const files = renderCompose();
  let stale = false;
  for (const [name, text] of Object.entries(files)) {
    const path = new URL(name, dir);
    if (process.argv.includes('--check')) {
      if (readFileSync(path, 'utf8') !== text) {
        process.stderr.write(`${path.pathname} is stale: run npm run render:compose\n`);
        stale = true;
      }
    } else writeFileSync(path, text);
  }
  process.exit(stale ? 1 : 0);
}
