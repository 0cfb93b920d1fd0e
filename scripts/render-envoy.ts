/**
 * `npm run render:envoy -- ...`: renders envoy/envoy.template.yaml for your
 * own Envoy (envoy/render-command.ts; the image runs the same command as
 * `mcp-pin render-envoy`).
 *
 *   npm run render:envoy -- --list
 *   npm run render:envoy -- --values values.json --set listenPort=8080 --out envoy.yaml
 *   npm run render:envoy -- --eds 10.0.0.11:8080,10.0.0.12:8080 --out eds.json
 */
import { runRenderCommand } from '../envoy/render-command.js';

process.exitCode = runRenderCommand(process.argv.slice(2), {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  command: 'npm run render:envoy --',
});
