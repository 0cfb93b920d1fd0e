#!/usr/bin/env -S node --max-semi-space-size=8
/** mcp-pin process: config, start, and a graceful drain on SIGTERM/SIGINT. */
import { startApp } from './app.js';
import { helpText, loadConfig, type Config } from './config.js';
import { InvalidConfigError } from './errors.js';
import { createLogger } from './log.js';
import { version } from './version.js';

async function main(): Promise<void> {
  if (process.argv[2] === 'render-envoy') {
    // The Envoy config from the build that runs: the image needs no checkout to render it.
    const { runRenderCommand } = await import('../envoy/render-command.js');
    process.exitCode = runRenderCommand(process.argv.slice(3), {
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
      command: 'mcp-pin render-envoy',
    });
    return;
  }
  if (process.argv[2] === 'sessions') {
    const { runSessionsCommand } = await import('./cli/sessions.js');
    process.exitCode = await runSessionsCommand(process.argv.slice(3), process.env, { out: (l) => console.log(l), err: (l) => console.error(l) });
    return;
  }
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  if (process.argv.includes('--version')) {
    process.stdout.write(`mcp-pin ${version()}\n`);
    return;
  }
  let cfg: Config;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (err instanceof InvalidConfigError) {
      process.stderr.write(`mcp-pin: ${err.message}\n(see mcp-pin --help)\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(cfg.logLevel);
  const app = await startApp(cfg, log);
  // Parent processes (tests, the stack script) read this line to learn the ports.
  process.stdout.write(`${JSON.stringify({ ready: true, grpcPort: app.grpcPort, metricsPort: app.metricsPort })}\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, openStreams: app.extProc.openStreams }, 'draining');
    app.shutdown().then(
      ({ leftOpen, drainMs }) => {
        log.info({ leftOpen, drainMs }, 'stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // One bad request must never take the process down; log what escaped.
  process.on('unhandledRejection', (err) => log.error({ err: (err as Error)?.message }, 'unhandled rejection'));
}

main().catch((err: unknown) => {
  process.stderr.write(`mcp-pin: failed to start: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
