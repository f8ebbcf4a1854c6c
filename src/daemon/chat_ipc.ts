/** Control-socket methods for `den chat @MEMBER` (docs/IPC.md). */
import type { MemberChatService } from "../chat/member_service.ts";
import { intParam, type Params, stringParam } from "../ipc/params.ts";

/** Longest a poll may wait: below the socket's 30 s idle limit. */
export const MAX_POLL_WAIT_MS = 25_000;

export function chatHandlers(chat: MemberChatService): [string, (p: Params) => unknown][] {
  return [
    ["chat.send", (p) => chat.send(stringParam(p, "member", 200), stringParam(p, "text", 4000))],
    ["chat.poll", (p) =>
      chat.poll(
        stringParam(p, "member", 200),
        p.after === undefined ? undefined : intParam(p, "after", 0, Number.MAX_SAFE_INTEGER),
        p.wait_ms === undefined ? 0 : intParam(p, "wait_ms", 0, MAX_POLL_WAIT_MS),
      )],
  ];
}
