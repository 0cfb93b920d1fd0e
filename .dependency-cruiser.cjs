/**
 * Import rules the test command enforces (npm run check:imports):
 * no cycles, and layers point one way: the ext_proc layer uses sessions and
 * recovery, never the other way round.
 */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'an import cycle', from: {}, to: { circular: true } },
    {
      name: 'recovery-not-extproc',
      severity: 'error',
      comment: 'recovery returns plain results; only the ext_proc layer knows Envoy messages',
      from: { path: '^src/recovery/' },
      to: { path: '^src/extproc/' },
    },
    {
      name: 'sessions-not-above',
      severity: 'error',
      comment: 'the session store knows nothing of ext_proc or recovery',
      from: { path: '^src/sessions/' },
      to: { path: '^src/(extproc|recovery)/' },
    },
    {
      name: 'neutral-modules-stay-neutral',
      severity: 'error',
      comment: 'shared helpers (headers, pod addresses, host:port, allowlist, errors, expiring ids, listen addresses, session paths) import no layer',
      from: { path: '^src/(mcp-headers|pod-address|host-port|pin-allowlist|errors|expiring-ids|listen-address|session-path)\\.ts$' },
      to: { path: '^src/(extproc|recovery|sessions)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
