/**
 * @module
 * The console's stylesheet and its one script, served from `/console/assets/` (the CSP allows
 * scripts and styles from the page's own origin only: nothing inline). The script, ~1 KB, refreshes
 * the page's `<main>` from the server every few seconds (`data-refresh`), pausing while the tab is
 * hidden; the server renders that HTML, escaped, as it renders the whole page.
 */

export const CONSOLE_JS = `"use strict";
(() => {
  const main = document.querySelector("main[data-refresh]");
  if (!main) return;
  const every = Number(main.dataset.refresh) || 5000;
  const status = document.getElementById("live-status");
  let busy = false;
  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const res = await fetch(location.href, { headers: { "x-console-fragment": "1" }, credentials: "same-origin" });
      if (res.status === 401) { location.reload(); return; }
      if (!res.ok) throw new Error(String(res.status));
      const text = await res.text();
      // Keep keyboard focus where it was when the same element comes back.
      const focused = document.activeElement && document.activeElement.id;
      main.innerHTML = text;
      if (focused) { const el = document.getElementById(focused); if (el) el.focus(); }
      if (status) status.textContent = "Updated " + new Date().toLocaleTimeString();
      main.dataset.refreshed = String(Number(main.dataset.refreshed || 0) + 1);
    } catch (e) {
      if (status) status.textContent = "Refresh failed (" + e.message + "); retrying";
    } finally {
      busy = false;
    }
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
})();
`;

export const CONSOLE_CSS = `:root{--fg:#1b1f24;--muted:#4a5260;--line:#d0d4da;--bg:#fff;--accent:#0b5cad;--bad:#b3261e;--warn:#8a5300;--ok:#1e6b34}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,summary:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
.skip{position:absolute;left:-9999px}.skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:2}
header.top{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;padding:10px 16px;border-bottom:1px solid var(--line);background:#f5f7fa}
header.top .brand{font-weight:700;color:var(--fg);text-decoration:none}
header.top nav ul{display:flex;flex-wrap:wrap;gap:4px 14px;list-style:none;margin:0;padding:0}
header.top form{margin-left:auto;display:flex;gap:8px;align-items:center}
main{padding:12px 16px 40px;max-width:1100px}
h1{font-size:1.4rem;margin:.4rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}
.crumbs{color:var(--muted);font-size:.9rem}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 6px;border-radius:4px;border:1px solid currentColor;font-size:.85rem}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.muted{color:var(--muted)}
code{font-family:ui-monospace,monospace;font-size:.88em;overflow-wrap:anywhere}
button,input,select{font:inherit;padding:5px 9px;border:1px solid #6b7380;border-radius:4px;background:#fff;color:var(--fg)}
button{cursor:pointer;background:var(--accent);color:#fff;border-color:var(--accent)}
button.link{background:none;color:var(--accent);border:none;padding:0;text-decoration:underline}
form.filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:end}
form.filters label,form.signin label{display:flex;flex-direction:column;font-size:.9rem;color:var(--muted)}
form.signin{max-width:420px;display:flex;flex-direction:column;gap:10px}
.error{color:var(--bad);font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:14px}
figure.chart{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px}
figure.chart figcaption{font-weight:600;font-size:.92rem;display:flex;flex-wrap:wrap;gap:4px 10px;align-items:center}
figure.chart .legend{font-weight:400;color:var(--muted);display:flex;gap:10px;flex-wrap:wrap}
figure.chart .key{display:inline-flex;gap:4px;align-items:center}
figure.chart svg[role=img]{width:100%;height:auto;display:block}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.ranges{display:flex;gap:12px}
#live-status{color:var(--muted);font-size:.85rem;margin:4px 16px 0;min-height:1.2em}
@media (max-width:600px){main{padding:10px}header.top form{margin-left:0}th,td{padding:4px 5px}.charts{grid-template-columns:1fr}}
`;
