/**
 * den's mDNS records (DNS-SD over RFC 6762): what a node announces about itself under
 * `_den._udp.local`, and what it accepts from others. Pure. Layout and rationale:
 * docs/DISCOVERY.md.
 *
 *   PTR  _den._udp.local             → den-<fp[0..12]>._den._udp.local
 *   SRV  den-<fp[0..12]>._den._udp.local → 0 0 <peer port> den-<fp[0..12]>.local
 *   TXT  den-<fp[0..12]>._den._udp.local → "v=1" "fp=<fingerprint>" "t=<hint>,…" ["t2=<hint>,…"]
 *   A / AAAA den-<fp[0..12]>.local   → this node's addresses, when it knows them
 *
 * A team hint is HMAC-SHA-256(key = team id bytes, "den/v1 mdns team hint" ‖ fingerprint),
 * first 8 bytes in hex: only members of the team (who know its id) can make or check one, and
 * it differs per node, so a stranger cannot tell which nodes share a team.
 */
import { fromHex, toHex, utf8 } from "../crypto/encoding.ts";
import { hmacSha256 } from "../crypto/kdf.ts";
import { normalizeFingerprint } from "../identity/fingerprint.ts";
import { parseIp } from "../config/validators.ts";
import {
  CLASS_IN,
  type DnsMessage,
  FLAGS_RESPONSE,
  type ResourceRecord,
  RR_TYPE,
} from "./mdns_codec.ts";

export const SERVICE = "_den._udp.local";
export const TXT_VERSION = "1";
/** Hints per announcement: teams beyond this many (in team id order) are not hinted. */
export const MAX_HINTS = 16;
/** Hints per TXT string: a TXT string holds at most 255 bytes ("t=" + 8 × 17 fits easily). */
const HINTS_PER_STRING = 8;
/** Instances per response considered: a den node announces exactly one. */
const MAX_INSTANCES = 4;
/** Addresses per instance kept. */
const MAX_ADDRESSES = 8;
/** Record TTL in seconds (RFC 6762 §10 recommends 120 s for records naming a host). */
export const RECORD_TTL = 120;
export const HINT_DOMAIN = "den/v1 mdns team hint";

const HINT = /^[0-9a-f]{16}$/;
const TEAM_ID = /^[0-9a-f]{64}$/;

/** `den-` + the first 12 characters of the fingerprint (the fingerprint is public anyway). */
export function instanceLabel(fingerprint: string): string {
  return `den-${fingerprint.slice(0, 12)}`;
}

/** This node's hint for one team: 16 hex characters. */
export function teamHint(teamId: string, fingerprint: string): string {
  if (!TEAM_ID.test(teamId)) throw new RangeError(`not a team id: ${JSON.stringify(teamId)}`);
  const mac = hmacSha256(fromHex(teamId), utf8(HINT_DOMAIN + fingerprint));
  return toHex(mac.subarray(0, 8));
}

/** The teams among `teams` whose hint for `fingerprint` appears in `hints`. */
export function hintedTeams(hints: readonly string[], fingerprint: string, teams: string[]) {
  if (hints.length === 0) return [];
  const seen = new Set(hints);
  return teams.filter((t) => TEAM_ID.test(t) && seen.has(teamHint(t, fingerprint)));
}

export interface SelfRecord {
  fingerprint: string;
  /** The peer listen port (TCP). */
  port: number;
  /** Team ids this node is a member of. */
  teams: readonly string[];
  /** This node's IP addresses, when known (A / AAAA). */
  addresses: readonly string[];
}

/** Our records: PTR, SRV, TXT, then A/AAAA. `ttl` 0 says goodbye (RFC 6762 §10.1). */
export function selfRecords(self: SelfRecord, ttl = RECORD_TTL): ResourceRecord[] {
  const label = instanceLabel(self.fingerprint);
  const instance = `${label}.${SERVICE}`;
  const host = `${label}.local`;
  const hints = [...self.teams].sort().slice(0, MAX_HINTS).map((t) =>
    teamHint(t, self.fingerprint)
  );
  const txt = [`v=${TXT_VERSION}`, `fp=${self.fingerprint}`];
  for (let i = 0; i < hints.length; i += HINTS_PER_STRING) {
    txt.push(`${i === 0 ? "t" : "t2"}=${hints.slice(i, i + HINTS_PER_STRING).join(",")}`);
  }
  const rr = (name: string, data: ResourceRecord["data"], cacheFlush = true): ResourceRecord => ({
    name,
    class: CLASS_IN,
    cacheFlush,
    ttl,
    data,
  });
  const out: ResourceRecord[] = [
    rr(SERVICE, { type: RR_TYPE.PTR, target: instance }, false), // shared record: no cache flush
    rr(instance, { type: RR_TYPE.SRV, priority: 0, weight: 0, port: self.port, target: host }),
    rr(instance, { type: RR_TYPE.TXT, strings: txt.map((s) => utf8(s)) }),
  ];
  for (const a of self.addresses.slice(0, MAX_ADDRESSES)) {
    const family = parseIp(a).family;
    out.push(rr(
      host,
      family === 4 ? { type: RR_TYPE.A, address: a } : {
        type: RR_TYPE.AAAA,
        address: a,
      },
    ));
  }
  return out;
}

/** An announcement or an answer to a query: a response carrying our records. */
export function response(self: SelfRecord, ttl = RECORD_TTL): DnsMessage {
  return {
    id: 0,
    flags: FLAGS_RESPONSE,
    questions: [],
    answers: selfRecords(self, ttl),
    authorities: [],
    additionals: [],
  };
}

/** The query every node sends: PTR `_den._udp.local`, multicast answer wanted. */
export function query(): DnsMessage {
  return {
    id: 0,
    flags: 0,
    questions: [{ name: SERVICE, type: RR_TYPE.PTR, class: CLASS_IN, unicastResponse: false }],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** A query (not a response) that asks for our service, by PTR or ANY. */
export function asksForDen(m: DnsMessage): boolean {
  if ((m.flags & 0x8000) !== 0) return false;
  return m.questions.some((q) =>
    sameName(q.name, SERVICE) && (q.type === RR_TYPE.PTR || q.type === RR_TYPE.ANY) &&
    (q.class === CLASS_IN || q.class === RR_TYPE.ANY)
  );
}

/** A validated den node seen in a response. */
export interface Advert {
  fingerprint: string;
  port: number;
  hints: string[];
  addresses: string[];
  ttl: number;
}

/** Why a den record set was not accepted (other services' records are simply not den's). */
export type AdvertProblem =
  | "no_srv"
  | "no_txt"
  | "bad_version"
  | "bad_fingerprint"
  | "name_mismatch"
  | "bad_port"
  | "bad_hints";

function txtMap(strings: Uint8Array[]): Map<string, string> {
  const out = new Map<string, string>();
  const dec = new TextDecoder();
  for (const s of strings) {
    const text = dec.decode(s);
    const eq = text.indexOf("=");
    const key = (eq < 0 ? text : text.slice(0, eq)).toLowerCase();
    if (key && !out.has(key)) out.set(key, eq < 0 ? "" : text.slice(eq + 1)); // first one wins
  }
  return out;
}

function parseHints(txt: Map<string, string>): string[] | null {
  const hints: string[] = [];
  for (const key of ["t", "t2"]) {
    const v = txt.get(key);
    if (v === undefined || v === "") continue;
    for (const h of v.split(",")) {
      if (!HINT.test(h)) return null;
      hints.push(h);
    }
  }
  return hints.length > MAX_HINTS ? null : hints;
}

function parseInstance(instance: string, records: ResourceRecord[]): Advert | AdvertProblem {
  const srv = records.find((r) => r.data.type === RR_TYPE.SRV && sameName(r.name, instance));
  const txtRecord = records.find((r) => r.data.type === RR_TYPE.TXT && sameName(r.name, instance));
  if (!srv || srv.data.type !== RR_TYPE.SRV) return "no_srv";
  if (!txtRecord || txtRecord.data.type !== RR_TYPE.TXT) return "no_txt";
  const txt = txtMap(txtRecord.data.strings);
  if (txt.get("v") !== TXT_VERSION) return "bad_version";
  let fingerprint: string;
  try {
    fingerprint = normalizeFingerprint(txt.get("fp") ?? "");
  } catch {
    return "bad_fingerprint";
  }
  if (!sameName(instance, `${instanceLabel(fingerprint)}.${SERVICE}`)) return "name_mismatch";
  const port = srv.data.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return "bad_port";
  const hints = parseHints(txt);
  if (hints === null) return "bad_hints";
  const target = srv.data.target;
  const addresses = records.flatMap((r) =>
    (r.data.type === RR_TYPE.A || r.data.type === RR_TYPE.AAAA) && sameName(r.name, target)
      ? [r.data.address]
      : []
  ).slice(0, MAX_ADDRESSES);
  return { fingerprint, port, hints, addresses, ttl: Math.min(srv.ttl, txtRecord.ttl) };
}

/**
 * The den nodes a response describes. Records of other services are ignored; den records that
 * do not validate are reported as problems (the caller counts them).
 */
export function parseAdverts(m: DnsMessage): { adverts: Advert[]; problems: AdvertProblem[] } {
  const adverts: Advert[] = [];
  const problems: AdvertProblem[] = [];
  if ((m.flags & 0x8000) === 0) return { adverts, problems };
  const records = [...m.answers, ...m.additionals];
  const instances: string[] = [];
  for (const r of records) {
    if (r.data.type !== RR_TYPE.PTR || !sameName(r.name, SERVICE)) continue;
    const target = r.data.target;
    if (!instances.some((i) => sameName(i, target))) instances.push(target);
    if (instances.length >= MAX_INSTANCES) break;
  }
  for (const instance of instances) {
    const a = parseInstance(instance, records);
    if (typeof a === "string") problems.push(a);
    else adverts.push(a);
  }
  return { adverts, problems };
}
