/**
 * The session handshake (docs/PROTOCOL.md): three messages, SIGMA-I style. Pure: messages are
 * bytes in and bytes out, the clock and randomness are injected, nothing touches a socket or a
 * timer.
 *
 *   initiator                                      responder
 *   start()        ── M1: versions, time, nonce, ephemeral X25519 + ML-KEM-768 keys ──▶
 *                  ◀── M2: version, time, nonce, ephemeral X25519 key, ML-KEM ciphertext,
 *                          sealed { identity, blinded teams, signature }              respond(m1)
 *   finish(m2)     ── M3: sealed { identity, blinded teams, signature } ──────────────▶ finish(m3)
 *
 * Each object runs one handshake once. A method called out of order, or after a failure, throws
 * HandshakeError "state"; any error leaves the object failed and its secrets wiped.
 */
import { chachaOpen, chachaSeal } from "../crypto/aead.ts";
import { concatBytes } from "../crypto/encoding.ts";
import {
  mlkemEncapsulate,
  mlkemEphemeral,
  mlkemEphemeralDecapsulate,
  type X25519Ephemeral,
  x25519Ephemeral,
  x25519EphemeralShared,
} from "../crypto/kem.ts";
import { randomBytes } from "../crypto/random.ts";
import { ed25519Sign, ed25519Verify } from "../crypto/sign.ts";
import { DenError } from "../errors.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { type Identity, PUBLIC_KEY_BYTES, type PublicKeys } from "../identity/keys.ts";
import {
  checkChosenVersion,
  checkFreshness,
  checkPeerIdentity,
  chooseVersion,
  type VersionRange,
} from "./checks.ts";
import {
  decodeIdentityBlock,
  decodeM1,
  decodeM2,
  decodeM3,
  encodeIdentityBody,
  encodeM1,
  encodeM2Header,
  encodeM3,
  type IdentityBlock,
  NONCE_BYTES,
  peekM1Versions,
  peekM2Version,
} from "./codec.ts";
import { HandshakeError } from "./errors.ts";
import {
  handshakeKeys,
  handshakeNonce,
  signingInput,
  trafficKeys,
  Transcript,
  wipe,
} from "./keyschedule.ts";
import { RecordReceiver, RecordSender, type RekeyLimits, rekeyLimits } from "./record.ts";
import { normalizeTeams, sharedTeams, teamTags } from "./teams.ts";

export { MAX_HANDSHAKE_MESSAGE } from "./codec.ts";
export { HandshakeError } from "./errors.ts";

export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

export interface HandshakeConfig {
  identity: Identity;
  /** Team ids, lowercase hex of 32 bytes; may be empty. */
  teams: string[];
  /** ms since the epoch. */
  now: () => number;
  /** Default: the platform CSPRNG. Tests inject a fixed stream for vectors. */
  random?: (n: number) => Uint8Array;
  rekey?: { bytes?: number; ms?: number };
}

export interface PeerInfo {
  version: number;
  name: string;
  fingerprint: string;
  publicKeys: PublicKeys;
  /**
   * The peer's teams that this node is also in (= sharedTeams). Team ids are exchanged blinded,
   * so a node never learns a peer's other teams.
   */
  teams: string[];
}

export interface Established {
  peer: PeerInfo;
  sharedTeams: string[];
  /** The final transcript hash, 32 bytes, equal on both ends: short authentication strings. */
  sessionId: Uint8Array;
  sender: RecordSender;
  receiver: RecordReceiver;
  /** Which end this is: the attach protocol and the tie-breaks need it. */
  role: Role;
  /** Secret to this session; moves it to another connection (attach.ts). */
  attachKey: Uint8Array;
  /** Secret to this session; the VPN data plane derives its packet keys from it. */
  dataPlaneKey: Uint8Array;
}

export type Role = "initiator" | "responder";
type State = "new" | "busy" | "waiting" | "done" | "failed";

interface Settings {
  identity: Identity;
  teams: string[];
  now: () => number;
  random: (n: number) => Uint8Array;
  rekey: RekeyLimits;
  versions: VersionRange;
}

export class InitiatorHandshake {
  readonly #s: Settings;
  readonly #transcript = new Transcript();
  #state: State = "new";
  #x25519?: X25519Ephemeral["privateKey"];
  #kem?: CryptoKey;

  constructor(cfg: HandshakeConfig) {
    this.#s = settings(cfg);
  }

  /** M1. */
  async start(): Promise<Uint8Array> {
    this.#state = enter(this.#state, "new", "InitiatorHandshake.start()");
    let xSeed: Uint8Array | undefined;
    let kemSeed: Uint8Array | undefined;
    try {
      const nonce = draw(this.#s, NONCE_BYTES);
      xSeed = draw(this.#s, 32);
      kemSeed = draw(this.#s, 64);
      const x = x25519Ephemeral(xSeed);
      const kem = await mlkemEphemeral(kemSeed);
      const m1 = encodeM1({
        minVersion: this.#s.versions.min,
        maxVersion: this.#s.versions.max,
        timestamp: clock(this.#s),
        nonce,
        x25519: x.publicKey,
        mlkem: kem.publicKey,
      });
      this.#transcript.absorb(m1);
      this.#x25519 = x.privateKey;
      this.#kem = kem.privateKey;
      this.#state = "waiting";
      return m1.slice();
    } catch (err) {
      this.#fail();
      throw err;
    } finally {
      wipe(xSeed, kemSeed);
    }
  }

  /** Takes M2; returns M3 (send it, then the session is up) and the established session. */
  async finish(m2: Uint8Array): Promise<{ reply: Uint8Array; established: Established }> {
    checkBytes(m2);
    this.#state = enter(this.#state, "waiting", "InitiatorHandshake.finish()", "start()");
    let shared: Uint8Array | undefined;
    let keys: ReturnType<typeof handshakeKeys> | undefined;
    try {
      const s = this.#s;
      checkChosenVersion(peekM2Version(m2), s.versions);
      const { header, headerBytes, sealed } = decodeM2(m2);
      checkFreshness(header.timestamp, clock(s));
      const xShared = peerX25519(this.#x25519!, header.x25519, "M2");
      const kemShared = await mlkemEphemeralDecapsulate(this.#kem!, header.cipherText);
      this.#kem = undefined;
      shared = concatBytes(xShared, kemShared);
      wipe(xShared, kemShared);
      const th2 = this.#transcript.absorb(headerBytes);
      keys = handshakeKeys(shared, th2);
      const peer = await openPeerBlock("responder", keys.responder, sealed, th2, this.#transcript);
      checkPeerIdentity(peer.publicKeys, peer.name, s.identity.publicKeys);
      const sealedOwn = await sealOwnBlock(
        s,
        "initiator",
        keys.initiator,
        keys.teams,
        this.#transcript,
      );
      const established = establish(
        s,
        "initiator",
        header.version,
        peer,
        shared,
        keys.teams,
        this.#transcript,
      );
      this.#state = "done";
      this.#x25519 = undefined;
      this.#kem = undefined;
      return { reply: encodeM3(sealedOwn), established };
    } catch (err) {
      this.#fail();
      throw err;
    } finally {
      wipe(shared, keys?.responder, keys?.initiator, keys?.teams);
    }
  }

  // The ephemeral private keys are non-extractable CryptoKey/KeyObject handles: JS cannot zero
  // them, only drop them so the runtime frees them.
  #fail(): void {
    this.#state = "failed";
    this.#x25519 = undefined;
    this.#kem = undefined;
  }
}

export class ResponderHandshake {
  readonly #s: Settings;
  readonly #transcript = new Transcript();
  #state: State = "new";
  #version = 0;
  #shared?: Uint8Array;
  #initiatorKey?: Uint8Array;
  #teamsKey?: Uint8Array;

  constructor(cfg: HandshakeConfig) {
    this.#s = settings(cfg);
  }

  /** Takes M1; returns M2. */
  async respond(m1: Uint8Array): Promise<Uint8Array> {
    checkBytes(m1);
    this.#state = enter(this.#state, "new", "ResponderHandshake.respond()");
    const s = this.#s;
    let keys: ReturnType<typeof handshakeKeys> | undefined;
    try {
      const version = chooseVersion(peekM1Versions(m1), s.versions);
      const f = decodeM1(m1);
      const now = clock(s);
      checkFreshness(f.timestamp, now);
      const nonce = draw(s, NONCE_BYTES);
      const xSeed = draw(s, 32);
      let x: X25519Ephemeral;
      try {
        x = x25519Ephemeral(xSeed);
      } finally {
        wipe(xSeed);
      }
      const xShared = peerX25519(x.privateKey, f.x25519, "M1");
      const m = draw(s, 32);
      let kem;
      try {
        kem = peerMlKemEncapsulate(f.mlkem, m);
      } finally {
        wipe(m);
      }
      const shared = concatBytes(xShared, kem.sharedSecret);
      wipe(xShared, kem.sharedSecret);
      this.#shared = shared;
      this.#transcript.absorb(m1);
      const header = encodeM2Header({
        version,
        timestamp: now,
        nonce,
        x25519: x.publicKey,
        cipherText: kem.cipherText,
      });
      keys = handshakeKeys(shared, this.#transcript.absorb(header));
      const sealed = await sealOwnBlock(
        s,
        "responder",
        keys.responder,
        keys.teams,
        this.#transcript,
      );
      this.#version = version;
      this.#initiatorKey = keys.initiator;
      this.#teamsKey = keys.teams;
      this.#state = "waiting";
      return concatBytes(header, sealed);
    } catch (err) {
      wipe(keys?.initiator, keys?.teams);
      this.#state = "failed";
      this.#wipe();
      throw err;
    } finally {
      wipe(keys?.responder);
    }
  }

  /** Takes M3; returns the established session. */
  async finish(m3: Uint8Array): Promise<Established> {
    checkBytes(m3);
    this.#state = enter(this.#state, "waiting", "ResponderHandshake.finish()", "respond()");
    try {
      const s = this.#s;
      const sealed = decodeM3(m3);
      const peer = await openPeerBlock(
        "initiator",
        this.#initiatorKey!,
        sealed,
        this.#transcript.hash,
        this.#transcript,
      );
      checkPeerIdentity(peer.publicKeys, peer.name, s.identity.publicKeys);
      const established = establish(
        s,
        "responder",
        this.#version,
        peer,
        this.#shared!,
        this.#teamsKey!,
        this.#transcript,
      );
      this.#state = "done";
      return established;
    } catch (err) {
      this.#state = "failed";
      throw err;
    } finally {
      this.#wipe();
    }
  }

  #wipe(): void {
    wipe(this.#shared, this.#initiatorKey, this.#teamsKey);
    this.#shared = this.#initiatorKey = this.#teamsKey = undefined;
  }
}

// ---- steps shared by both roles ----

/**
 * The other side's sealed identity block: decrypt (key confirmation), decode, absorb the body,
 * verify the signature over the transcript so far, absorb the signature.
 */
async function openPeerBlock(
  peerRole: Role,
  key: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
  transcript: Transcript,
): Promise<IdentityBlock> {
  const msg = peerRole === "responder" ? "M2" : "M3";
  let plain: Uint8Array;
  try {
    plain = chachaOpen(key, handshakeNonce(), sealed, aad);
  } catch (err) {
    if (!(err instanceof DenError) || err.code !== "aead_failed") throw err;
    throw new HandshakeError(
      "decrypt",
      `the peer's ${msg} does not decrypt: it was modified in transit, or the other side ` +
        `does not hold the keys this handshake agreed on`,
    );
  }
  const block = decodeIdentityBlock(plain, `${msg}'s identity block`);
  const th = transcript.absorb(block.body);
  if (!await ed25519Verify(block.publicKeys.ed25519, signingInput(peerRole, th), block.signature)) {
    throw new HandshakeError(
      "signature",
      `the peer's ${msg} signature does not verify for the identity it claims ` +
        `(${JSON.stringify(block.name)}, fingerprint ${fingerprint(block.publicKeys)})`,
    );
  }
  transcript.absorb(block.signature);
  return block;
}

/** Our identity block, signed over the transcript and sealed with AAD = the transcript before it. */
async function sealOwnBlock(
  s: Settings,
  role: Role,
  key: Uint8Array,
  teamsKey: Uint8Array,
  transcript: Transcript,
): Promise<Uint8Array> {
  const aad = transcript.hash;
  const body = encodeIdentityBody({
    publicKeys: s.identity.publicKeys,
    name: s.identity.name,
    teamTags: teamTags(teamsKey, s.teams),
  });
  const th = transcript.absorb(body);
  const signature = await ed25519Sign(s.identity.signing, signingInput(role, th));
  transcript.absorb(signature);
  return chachaSeal(key, handshakeNonce(), concatBytes(body, signature), aad);
}

function establish(
  s: Settings,
  role: Role,
  version: number,
  peer: IdentityBlock,
  shared: Uint8Array,
  teamsKey: Uint8Array,
  transcript: Transcript,
): Established {
  const sessionId = transcript.hash;
  const keys = trafficKeys(shared, sessionId);
  try {
    const initiator = role === "initiator";
    const send = initiator ? keys.initiatorToResponder : keys.responderToInitiator;
    const receive = initiator ? keys.responderToInitiator : keys.initiatorToResponder;
    const teams = sharedTeams(teamsKey, s.teams, peer.teamTags);
    return {
      peer: {
        version,
        name: peer.name,
        fingerprint: fingerprint(peer.publicKeys),
        publicKeys: peer.publicKeys,
        teams: [...teams],
      },
      sharedTeams: teams,
      sessionId,
      sender: new RecordSender(send, { now: clock(s), rekey: s.rekey }),
      receiver: new RecordReceiver(receive),
      role,
      attachKey: keys.attach,
      dataPlaneKey: keys.dataPlane,
    };
  } finally {
    wipe(keys.initiatorToResponder, keys.responderToInitiator);
  }
}

function peerX25519(
  own: X25519Ephemeral["privateKey"],
  peer: Uint8Array,
  msg: string,
): Uint8Array {
  try {
    return x25519EphemeralShared(own, peer);
  } catch (err) {
    if (!(err instanceof DenError)) throw err;
    throw new HandshakeError(
      "malformed",
      `the peer's ephemeral X25519 key in ${msg} is invalid: ${err.message}`,
    );
  }
}

function peerMlKemEncapsulate(publicKey: Uint8Array, m: Uint8Array) {
  try {
    return mlkemEncapsulate(publicKey, m);
  } catch (err) {
    if (!(err instanceof DenError)) throw err;
    throw new HandshakeError(
      "malformed",
      `the peer's ephemeral ML-KEM-768 key in M1 is invalid: ${err.message}`,
    );
  }
}

// ---- configuration, state, injected clock and randomness ----

function settings(cfg: HandshakeConfig): Settings {
  const id = cfg.identity;
  for (const k of ["ed25519", "x25519", "mlkem768"] as const) {
    if (
      !(id?.publicKeys?.[k] instanceof Uint8Array) ||
      id.publicKeys[k].length !== PUBLIC_KEY_BYTES[k]
    ) {
      throw new TypeError(`HandshakeConfig.identity: ${k} public key missing or wrong size`);
    }
  }
  if (typeof cfg.now !== "function") throw new TypeError("HandshakeConfig.now must be a function");
  if (cfg.random !== undefined && typeof cfg.random !== "function") {
    throw new TypeError("HandshakeConfig.random must be a function");
  }
  return {
    identity: id,
    teams: normalizeTeams(cfg.teams),
    now: cfg.now,
    random: cfg.random ?? randomBytes,
    rekey: rekeyLimits(cfg.rekey),
    versions: { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION },
  };
}

function enter(state: State, expected: State, method: string, previous = ""): State {
  if (state === expected) return "busy";
  const why: Record<State, string> = {
    new: `before ${previous}`,
    busy: "while another step of the same handshake is running",
    waiting: "twice",
    done: "after the handshake finished",
    failed: "after the handshake failed",
  };
  throw new HandshakeError("state", `${method} called ${why[state]}`);
}

function checkBytes(msg: unknown): void {
  if (!(msg instanceof Uint8Array)) throw new TypeError("handshake message must be a Uint8Array");
}

function clock(s: Settings): number {
  const t = s.now();
  if (!Number.isFinite(t) || t < 0 || t > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`HandshakeConfig.now() returned ${t}, not ms since the epoch`);
  }
  return Math.floor(t);
}

/** The caller owns (and wipes) what it draws. */
function draw(s: Settings, n: number): Uint8Array {
  const b = s.random(n);
  if (!(b instanceof Uint8Array) || b.length !== n) {
    throw new RangeError(`HandshakeConfig.random(${n}) must return ${n} bytes`);
  }
  return b;
}
