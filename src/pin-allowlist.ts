/**
 * Where a pin may point. Pins come only from what Envoy reported, but the
 * store could still be poisoned (anyone who can write Redis could aim
 * sessions at Redis itself, Envoy's admin port, or a host outside the
 * cluster). Every pin is checked here before it is stored or used.
 *
 * Entries: CIDR (any port), CIDR:port, CIDR:low-high; dns:<name>[:port] for
 * the pods behind a name (a Kubernetes headless Service resolves to every pod
 * IP), re-resolved every DNS_REFRESH_MS; "*" allows any address.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ConfigValueError } from './errors.js';
import { splitHostPort } from './host-port.js';

const DNS_REFRESH_MS = 5000;
/** A pod not (yet) in the last DNS answer triggers a lookup at once, at most this often. */
const MISS_REFRESH_MIN_INTERVAL_MS = 1000;

/** Resolves a name to all its addresses (injectable for tests). */
export type Resolver = (name: string) => Promise<string[]>;
const systemResolver: Resolver = async (name) => (await lookup(name, { all: true })).map((a) => a.address);

interface DnsRule {
  name: string;
  port: number | null;
  addresses: Set<string>;
}

interface Rule {
  list: BlockList;
  low: number;
  high: number;
}

export class PinAllowlist {
  private readonly rules: Rule[] = [];
  private readonly dnsRules: DnsRule[] = [];
  private timer: NodeJS.Timeout | null = null;
  private missRefresh: Promise<void> | null = null;
  private lastMissRefreshAt = -Infinity;
  readonly allowsAny: boolean;

  constructor(
    spec: string,
    private readonly resolve: Resolver = systemResolver,
    private readonly onResolveError: (name: string, err: unknown) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    const entries = spec
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    this.allowsAny = entries.includes('*');
    for (const e of entries) {
      if (e === '*') continue;
      const [, dnsName, dnsPort] = /^dns:([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(e) ?? [];
      if (dnsName !== undefined) {
        const port = dnsPort ? Number(dnsPort) : null;
        if (port !== null && (port < 1 || port > 65535)) throw new ConfigValueError(`"${e}": bad port`);
        this.dnsRules.push({ name: dnsName, port, addresses: new Set() });
        continue;
      }
      const m = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]+)\/(\d{1,3})(?::(\d{1,5})(?:-(\d{1,5}))?)?$/.exec(e);
      if (!m?.[1]) throw new ConfigValueError(`"${e}" is not CIDR, CIDR:port or CIDR:low-high`);
      const addr = m[1].replace(/^\[|\]$/g, '');
      const family = isIP(addr);
      const prefix = Number(m[2]);
      if (family === 0 || prefix > (family === 4 ? 32 : 128)) throw new ConfigValueError(`"${e}": bad network`);
      const low = m[3] ? Number(m[3]) : 1;
      const high = m[4] ? Number(m[4]) : m[3] ? low : 65535;
      if (low < 1 || high > 65535 || low > high) throw new ConfigValueError(`"${e}": bad port range`);
      const list = new BlockList();
      list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
      this.rules.push({ list, low, high });
    }
    if (!this.allowsAny && this.rules.length === 0 && this.dnsRules.length === 0) throw new ConfigValueError('give at least one network, or * to allow any');
  }

  /** Resolves the dns: entries now and then every few seconds; a failed lookup keeps the last answer. */
  async start(): Promise<void> {
    if (this.dnsRules.length === 0) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), DNS_REFRESH_MS).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async refresh(): Promise<void> {
    await Promise.all(
      this.dnsRules.map(async (r) => {
        try {
          r.addresses = new Set(await this.resolve(r.name));
        } catch (err) {
          this.onResolveError(r.name, err);
        }
      }),
    );
  }

  /**
   * Like allows(), but a pod missing from the last DNS answer (a pod scaled
   * up since, that Envoy already sends an initialize to) makes the dns:
   * entries resolve again at once before the answer is no; such lookups are
   * shared and at most one per MISS_REFRESH_MIN_INTERVAL_MS, so a flood of
   * bad pins cannot hammer DNS.
   */
  async allowsFresh(pod: string): Promise<boolean> {
    if (this.allows(pod) || this.dnsRules.length === 0) return this.allows(pod);
    if (!this.missRefresh && this.now() - this.lastMissRefreshAt >= MISS_REFRESH_MIN_INTERVAL_MS) {
      this.lastMissRefreshAt = this.now();
      this.missRefresh = this.refresh().finally(() => (this.missRefresh = null));
    }
    if (this.missRefresh) await this.missRefresh;
    return this.allows(pod);
  }

  /** pod is "ip:port" or "[ipv6]:port", as parsePodAddress returns it. */
  allows(pod: string): boolean {
    if (this.allowsAny) return true;
    const hp = splitHostPort(pod);
    if (!hp) return false;
    const { host, port } = hp;
    const family = isIP(host) === 6 ? 'ipv6' : 'ipv4';
    if (this.rules.some((r) => port >= r.low && port <= r.high && r.list.check(host, family))) return true;
    return this.dnsRules.some((r) => (r.port === null || r.port === port) && r.addresses.has(host));
  }
}
