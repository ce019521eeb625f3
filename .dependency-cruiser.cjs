// The layer table of DESIGN.md as rules: a layer imports only what sits below it.
// `npm test` runs this, so a wrong import fails the suite.
const layer = (name, allowed) => ({
  name: `${name}-imports-only-below`,
  severity: 'error',
  comment: `src/${name} may import only: ${allowed.join(', ') || 'nothing of ours'}`,
  from: { path: `^src/${name}/` },
  to: {
    path: '^src/',
    pathNot: [`^src/${name}/`, ...allowed.map((a) => `^src/${a}/`)],
  },
});

module.exports = {
  forbidden: [
    {
      name: 'smtp-is-sans-io',
      severity: 'error',
      comment: 'The protocol core is pure: no sockets, files, DNS, timers or processes.',
      from: { path: '^src/smtp/' },
      to: {
        dependencyTypes: ['core'],
        path: '^(node:)?(net|tls|fs|fs/promises|dns|dns/promises|timers|timers/promises|child_process|http|https|dgram|cluster|worker_threads)$',
      },
    },
    layer('smtp', []),
    layer('config', ['smtp']),
    layer('policy', ['smtp', 'config']),
    layer('bounce', ['smtp', 'config']),
    layer('store', ['smtp']),
    layer('dns', []),
    layer('observability', []),
    // Leaf I/O for local mailboxes: the users file, Maildir writing, quota accounting.
    layer('mailbox', ['smtp', 'config']),
    layer('server', ['smtp', 'config', 'policy', 'store', 'dns', 'observability']),
    layer('delivery', ['smtp', 'config', 'store', 'bounce', 'dns', 'observability', 'mailbox']),
    layer('tracking', ['store', 'smtp']),
    layer('admin', ['tracking', 'store', 'config', 'observability', 'smtp']),
    {
      name: 'nobody-imports-the-top',
      severity: 'error',
      from: { path: '^src/(?!cli/)' },
      to: { path: '^src/(cli/|gateway\\.ts)' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
  },
};
