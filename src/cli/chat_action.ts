/** `den chat`: picks the view and the kind of chat, checks flags, runs it until it ends. */
import { type ChatView, colorWanted, LineView, TerminalView } from "../chat/chat_view.ts";
import { runRoomChat } from "../chat/room_client.ts";
import { loadConfig } from "../config/load.ts";
import { parseRelayUrl, ValueError } from "../config/validators.ts";
import { DenError } from "../errors.ts";
import type { CommandContext } from "./context.ts";
import { usageError } from "./flag_values.ts";
import { writeErr } from "./output.ts";

const COMPAT_WARNING = "warning: --compat speaks the plain secure-chat format: no " +
  "post-quantum protection, no identity check, and message lengths are visible to the relay. " +
  "Use it only with a client that cannot speak den's own protocol.\n";

function chatView(): ChatView {
  return Deno.stdin.isTerminal() && Deno.stdout.isTerminal()
    ? new TerminalView(colorWanted())
    : new LineView();
}

export async function runChat(ctx: CommandContext): Promise<number> {
  const target = ctx.args[0];
  if (target?.startsWith("@")) {
    if (ctx.string("relay") !== undefined || ctx.bool("compat")) {
      throw usageError("--relay and --compat are for room chat, not @MEMBER");
    }
    const { runMemberChat } = await import("../chat/member_client.ts");
    return runMemberChat({ socket: ctx.paths.socket, member: target.slice(1), view: chatView() });
  }
  const url = await relayUrl(ctx);
  const view = chatView();
  if (ctx.bool("compat")) writeErr(COMPAT_WARNING);
  if (target === undefined && view.interactive) {
    view.notice(
      `no room code given: pick one with the other person, or share this fresh one: ${freshRoomCode()}`,
    );
  }
  return runRoomChat({ url, room: target, mode: ctx.bool("compat") ? "compat" : "den", view });
}

async function relayUrl(ctx: CommandContext): Promise<string> {
  const flag = ctx.string("relay");
  if (flag !== undefined) {
    try {
      return parseRelayUrl(flag).href;
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      throw usageError(`--relay: "${flag}" is not a relay URL: ${err.message}`);
    }
  }
  try {
    const { config } = await loadConfig(ctx.paths.config);
    if (config.relay.urls.length > 0) return config.relay.urls[0];
  } catch (err) {
    if (!(err instanceof DenError)) throw err;
  }
  throw usageError(
    "room chat needs a relay: --relay URL",
    "e.g. den chat ROOM --relay wss://relay.example.org:8765",
  );
}

/** Ten characters from A-Z and 2-9 without look-alikes (0/O, 1/I): about 49 bits. */
function freshRoomCode(): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  return [...crypto.getRandomValues(new Uint8Array(10))].map((b) => alphabet[b & 31]).join("");
}
