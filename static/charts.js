// Charts of the dashboards and reports. Each <div data-chart="id"> draws the series that
// the server wrote as JSON in <script id="id" type="application/json"> (json_script):
// {"kind": "line"|"bar", "x": [...], "series": [{"name": "...", "data": [...]}], "percent": bool,
//  "dates": bool (x holds ISO days, "2026-09-07")}.
// Numbers and days are written in the page's language (<html lang>), as the server writes them:
// "1 000" and "07/09/2026" in French, "1,000" and "09/07/2026" in English (ECharts alone would
// write "1,000" and the ISO day whatever the language).
(function () {
  "use strict";
  if (!window.echarts) return;
  const lang = document.documentElement.lang || "en";
  const numbers = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  const days = new Intl.DateTimeFormat(lang, { day: "2-digit", month: "2-digit", year: "numeric", timeZone: "UTC" });
  const number = (value) => (value === null || value === undefined || value === "" ? "—" : numbers.format(value));
  const day = (iso) => {
    const when = new Date(`${iso}T00:00:00Z`);
    return Number.isNaN(when.getTime()) ? iso : days.format(when);
  };
  document.querySelectorAll("[data-chart]").forEach((element) => {
    const source = document.getElementById(element.dataset.chart);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    const value = spec.percent ? (v) => (v === null || v === undefined ? "—" : `${number(v)}\u202f%`) : number;
    const chart = echarts.init(element, null, { renderer: "svg", locale: lang === "fr" ? "FR" : "EN" });
    chart.setOption({
      animation: false,
      grid: { left: 56, right: 16, top: 32, bottom: 28 },
      tooltip: { trigger: "axis", valueFormatter: value },
      legend: { top: 0 },
      xAxis: { type: "category", data: spec.dates ? spec.x.map(day) : spec.x },
      yAxis: { type: "value", axisLabel: { formatter: value } },
      series: spec.series.map((s) => ({ name: s.name, type: spec.kind || "line", data: s.data, showSymbol: false,
                                        step: s.step || false, areaStyle: s.area ? {} : undefined })),
    });
    window.addEventListener("resize", () => chart.resize());
  });
})();
