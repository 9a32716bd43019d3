from bot.pacing import WindowLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_window_limiter_allows_a_burst_then_waits_for_the_window():
    fake = FakeTime()
    limiter = WindowLimiter(3, 1.0, clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(7):
        await limiter.wait()
        starts.append(fake.now)
    assert starts == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    # No window of one second ever holds more than three starts.
    for start in starts:
        assert sum(1 for other in starts if start <= other < start + 1.0) <= 3


async def test_window_limiter_makes_up_for_slow_callers():
    fake = FakeTime()
    limiter = WindowLimiter(2, 1.0, clock=fake.clock, sleep=fake.sleep)
    await limiter.wait()
    fake.now = 5.0  # the caller was slow: the next calls need not wait at all
    await limiter.wait()
    await limiter.wait()
    assert fake.sleeps == []
