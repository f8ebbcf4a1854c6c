/** The attach protocol (src/session/attach.ts) over a frame link, with a deadline. */
import {
  A2_BYTES,
  A3_BYTES,
  AttachDialer,
  AttachListener,
  type AttachSession,
} from "../session/attach.ts";
import type { FrameLink } from "../transport/link.ts";
import { readBefore } from "./session_conn.ts";

/** Dialler side: A1, wait for A2, A3. Afterwards the link carries the session's records. */
export async function dialAttach(
  link: FrameLink,
  session: AttachSession,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const dialer = new AttachDialer(session);
  await link.write(dialer.hello());
  await link.write(dialer.confirm(await readBefore(link, A2_BYTES, deadline)));
}

/** Listener side, given the A1 already read: A2, wait for A3. */
export async function answerAttach(
  link: FrameLink,
  hello: Uint8Array,
  session: AttachSession,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const listener = new AttachListener(session);
  await link.write(listener.answer(hello));
  listener.finish(await readBefore(link, A3_BYTES, deadline));
}
