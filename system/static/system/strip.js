// The staff system strip: polls /api/system/ and shows each check as ok or not.
(() => {
  const strip = document.getElementById("system-strip");
  const text = {
    kafka: s => s.ok ? `Kafka: ${s.brokers} broker(s)` : `Kafka: ${s.error}`,
    lag: s => s.groups.length
      ? "lag: " + s.groups.map(g => `${g.group}/${g.topic} ${g.lag} (${g.members} in group)`).join(", ")
        + (s.ok ? "" : ` — ${s.error}`)
      : `lag: ${s.error}`,
    database: s => s.ok ? "database: ok" : `database: ${s.error}`,
    channel_layer: s => s.ok ? "channel layer: ok" : `channel layer: ${s.error}`,
    storage: s => s.ok ? "storage: ok" : `storage: ${s.error}`,
    collector: s => s.ok ? `collector: consuming (${s.consuming})` : `collector: ${s.error}`,
    workers: s => `workers: ${s.online} online, ${s.stale} stale, ${s.offline} offline`,
  };
  const refresh = async () => {
    try {
      const system = await (await fetch("/api/system/")).json();
      for (const [key, show] of Object.entries(text)) {
        const cell = strip.querySelector(`[data-check="${key}"]`);
        cell.textContent = show(system[key]);
        cell.className = system[key].ok ? "ok" : "bad";
      }
    } catch (error) {
      strip.querySelector('[data-check="kafka"]').textContent = `system status unavailable (${error})`;
    }
  };
  refresh();
  setInterval(refresh, 5000);
})();
