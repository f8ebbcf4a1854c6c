/**
 * Runs async jobs one after another, in the order they were queued. Sync messages go through
 * one: a batch's ops must be added before the next batch's, and a member's team block before
 * its ops, or the receiver sees gaps and strangers that are not there.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Queues `job`; its failure is handed to `onError` and does not stop later jobs. */
  push(job: () => unknown, onError: (err: unknown) => void): void {
    this.#tail = this.#tail.then(job).catch(onError);
  }
}
