/** The team chain's error: a stable machine-readable code and a message that says what was wrong. */
export class TeamError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "TeamError";
  }
}
