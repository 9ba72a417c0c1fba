/**
 * WallClock is the node's wall clock. Nothing that decides uses it: commands are stamped with
 * cluster time (src/registry/cluster-clock.ts) and leases run on the monotonic clock. Wall time a
 * node reads goes through here, so the fault-injection suite can shift it (a test-only control,
 * see AdminHttp and UnsafeSwitches) and show that sessions, reaping and leases do not notice.
 */
export class WallClock {
  private offsetMs = 0;

  /** now is the wall clock in ms since the epoch, shifted by the test offset (0 in normal use). */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** offset is the current test shift in ms. */
  get offset(): number {
    return this.offsetMs;
  }

  /** setOffset shifts the clock (test-only control). */
  setOffset(ms: number): void {
    this.offsetMs = ms;
  }
}
