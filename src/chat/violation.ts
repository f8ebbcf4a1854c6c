/**
 * A protocol deviation by the other side or the relay: the session is destroyed, never repaired
 * (fail secure). The message says what was wrong, for the person whose chat just ended.
 */
export class ChatViolation extends Error {
  override name = "ChatViolation";
}
