// Gathers single items into batches: a batch is sent when it holds `maxItems` items or when
// the first item has waited `maxWaitMs`, whichever comes first. Pages show many images at
// once, so this turns dozens of messages into a few HTTP requests. Waiting items go out most
// urgent first (lowest `priorityOf(item)`, arrival order within one), and a batch holds one
// priority: the backend answers a request when all its items are done, so an urgent image
// never waits for a less urgent one sent with it.

export class MicroBatcher {
  /** `runBatch(items)` returns a promise of one result per item, in order. */
  constructor(runBatch, { maxItems = 16, maxWaitMs = 50, priorityOf = () => 0 } = {}) {
    this.runBatch = runBatch;
    this.maxItems = maxItems;
    this.maxWaitMs = maxWaitMs;
    this.priorityOf = priorityOf;
    this.pending = [];
    this.timer = null;
  }

  submit(item) {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.maxItems) this.flush();
      else if (this.timer === null) this.timer = setTimeout(() => this.flush(), this.maxWaitMs);
    });
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = null;
    this.pending.sort((a, b) => this.priorityOf(a.item) - this.priorityOf(b.item)); // stable: arrival order within a priority
    const others = this.pending.findIndex((entry) => this.priorityOf(entry.item) !== this.priorityOf(this.pending[0].item));
    const batch = this.pending.splice(0, Math.min(this.maxItems, others === -1 ? this.pending.length : others));
    if (this.pending.length > 0) this.timer = setTimeout(() => this.flush(), 0);
    if (batch.length === 0) return;
    this.runBatch(batch.map((entry) => entry.item)).then(
      (results) => batch.forEach((entry, index) => entry.resolve(results[index])),
      (error) => batch.forEach((entry) => entry.reject(error)),
    );
  }
}
