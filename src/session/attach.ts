/**
 * Path attach (docs/PROTOCOL.md, "Path attach"): binds a new connection to an established session
 * so the session can move there (relay → direct TCP) without a new handshake and without losing a
 * record. Pure: three messages, each MACed with the session's attach key.
 *
 *   A1 dialer → listener   "DENA" ‖ 1 ‖ dialer role ‖ attach id (16) ‖ n_d (32) ‖ mac1
 *   A2 listener → dialer   "DENA" ‖ 2 ‖ n_l (32) ‖ mac2
 *   A3 dialer → listener   "DENA" ‖ 3 ‖ mac3
 *
 * The listener's fresh n_l makes a replayed A1 useless (nobody without the key can answer A2), the
 * role byte stops an A1 being reflected back to its sender, and each MAC covers both nonces.
 */
import { concatBytes, equalBytes, utf8 } from "../crypto/encoding.ts";
import { hmacSha256 } from "../crypto/kdf.ts";
import { randomBytes } from "../crypto/random.ts";
import { DenError } from "../errors.ts";
import type { Role } from "./handshake.ts";

export const ATTACH_MAGIC = utf8("DENA");
export const ATTACH_ID_BYTES = 16;
const NONCE_BYTES = 32;
const MAC_BYTES = 32;
const HEAD = ATTACH_MAGIC.length + 1;
export const A1_BYTES = HEAD + 1 + ATTACH_ID_BYTES + NONCE_BYTES + MAC_BYTES;
export const A2_BYTES = HEAD + NONCE_BYTES + MAC_BYTES;
export const A3_BYTES = HEAD + MAC_BYTES;

const LABEL_ID = utf8("den/v1 attach id");
const LABEL_1 = utf8("den/v1 attach 1");
const LABEL_2 = utf8("den/v1 attach 2");
const LABEL_3 = utf8("den/v1 attach 3");
const ROLE_BYTE: Record<Role, number> = { initiator: 0, responder: 1 };

export class AttachError extends DenError {
  constructor(message: string) {
    super("attach_failed", message, {
      hint: "the session stays on its current path; den tries the direct path again later",
    });
    this.name = "AttachError";
  }
}

/** What a session contributes: its attach key and which end of the handshake this node was. */
export interface AttachSession {
  attachKey: Uint8Array;
  role: Role;
}

/** The public name of a session on a new connection: lets the listener find the session. */
export function attachId(key: Uint8Array): Uint8Array {
  return hmacSha256(key, LABEL_ID).subarray(0, ATTACH_ID_BYTES);
}

function header(type: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  out.set(ATTACH_MAGIC);
  out[ATTACH_MAGIC.length] = type;
  return out;
}

function hasHeader(frame: Uint8Array, type: number, size: number): boolean {
  return frame.length === size &&
    equalBytes(frame.subarray(0, ATTACH_MAGIC.length), ATTACH_MAGIC) &&
    frame[ATTACH_MAGIC.length] === type;
}

/** The attach id an A1 names, or null when the frame is not an A1 (e.g. a handshake M1). */
export function readAttachHello(frame: Uint8Array): Uint8Array | null {
  if (!hasHeader(frame, 1, A1_BYTES)) return null;
  return frame.slice(HEAD + 1, HEAD + 1 + ATTACH_ID_BYTES);
}

export class AttachDialer {
  readonly #s: AttachSession;
  readonly #id: Uint8Array;
  readonly #nonce: Uint8Array;
  #state: "new" | "sent" | "done" = "new";

  constructor(session: AttachSession, random: (n: number) => Uint8Array = randomBytes) {
    this.#s = session;
    this.#id = attachId(session.attachKey);
    this.#nonce = random(NONCE_BYTES);
  }

  hello(): Uint8Array {
    if (this.#state !== "new") throw new AttachError("attach hello already sent");
    this.#state = "sent";
    const role = new Uint8Array([ROLE_BYTE[this.#s.role]]);
    const out = header(1, A1_BYTES);
    out.set(role, HEAD);
    out.set(this.#id, HEAD + 1);
    out.set(this.#nonce, HEAD + 1 + ATTACH_ID_BYTES);
    out.set(
      hmacSha256(this.#s.attachKey, concatBytes(LABEL_1, role, this.#id, this.#nonce)),
      A1_BYTES - MAC_BYTES,
    );
    return out;
  }

  /** Checks A2 and returns A3; after this the connection belongs to the session. */
  confirm(a2: Uint8Array): Uint8Array {
    if (this.#state !== "sent") throw new AttachError("attach answer out of order");
    if (!hasHeader(a2, 2, A2_BYTES)) throw new AttachError("malformed attach answer");
    const theirs = a2.subarray(HEAD, HEAD + NONCE_BYTES);
    const nonces = concatBytes(this.#id, this.#nonce, theirs);
    const mac = hmacSha256(this.#s.attachKey, concatBytes(LABEL_2, nonces));
    if (!equalBytes(mac, a2.subarray(HEAD + NONCE_BYTES))) {
      throw new AttachError("the attach answer does not prove the session key");
    }
    this.#state = "done";
    const out = header(3, A3_BYTES);
    out.set(hmacSha256(this.#s.attachKey, concatBytes(LABEL_3, nonces)), HEAD);
    return out;
  }
}

export class AttachListener {
  readonly #s: AttachSession;
  readonly #id: Uint8Array;
  readonly #nonce: Uint8Array;
  #nonces: Uint8Array | null = null;
  #state: "new" | "answered" | "done" = "new";

  constructor(session: AttachSession, random: (n: number) => Uint8Array = randomBytes) {
    this.#s = session;
    this.#id = attachId(session.attachKey);
    this.#nonce = random(NONCE_BYTES);
  }

  /** Checks A1 and returns A2. */
  answer(a1: Uint8Array): Uint8Array {
    if (this.#state !== "new") throw new AttachError("attach hello out of order");
    const id = readAttachHello(a1);
    if (!id || !equalBytes(id, this.#id)) throw new AttachError("attach hello for another session");
    const role = a1.subarray(HEAD, HEAD + 1);
    if (role[0] === ROLE_BYTE[this.#s.role]) {
      throw new AttachError("attach hello claims this node's own role (reflected)");
    }
    const theirs = a1.subarray(HEAD + 1 + ATTACH_ID_BYTES, A1_BYTES - MAC_BYTES);
    const mac = hmacSha256(this.#s.attachKey, concatBytes(LABEL_1, role, id, theirs));
    if (!equalBytes(mac, a1.subarray(A1_BYTES - MAC_BYTES))) {
      throw new AttachError("the attach hello does not prove the session key");
    }
    this.#state = "answered";
    this.#nonces = concatBytes(id, theirs, this.#nonce);
    const out = header(2, A2_BYTES);
    out.set(this.#nonce, HEAD);
    out.set(hmacSha256(this.#s.attachKey, concatBytes(LABEL_2, this.#nonces)), HEAD + NONCE_BYTES);
    return out;
  }

  /** Checks A3; after this the connection belongs to the session. */
  finish(a3: Uint8Array): void {
    if (this.#state !== "answered" || !this.#nonces) {
      throw new AttachError("attach confirmation out of order");
    }
    if (!hasHeader(a3, 3, A3_BYTES)) throw new AttachError("malformed attach confirmation");
    const mac = hmacSha256(this.#s.attachKey, concatBytes(LABEL_3, this.#nonces));
    if (!equalBytes(mac, a3.subarray(HEAD))) {
      throw new AttachError("the attach confirmation does not prove the session key");
    }
    this.#state = "done";
  }
}
