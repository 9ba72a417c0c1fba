/**
 * WallClock is the node's wall clock: what stamps commands (`at`) and decides reaps. The
 * fault-injection suite may shift it (a test-only control, see AdminHttp and UnsafeSwitches) to
 * show that leases, which run on the monotonic clock, do not depend on it.
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
