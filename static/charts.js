// Charts of the dashboards and reports. Each <div data-chart="id"> draws the series that
// the server wrote as JSON in <script id="id" type="application/json"> (json_script):
// {"kind": "line"|"bar", "x": [...], "series": [{"name": "...", "data": [...]}], "percent": bool}.
(function () {
  "use strict";
  if (!window.echarts) return;
  document.querySelectorAll("[data-chart]").forEach((element) => {
    const source = document.getElementById(element.dataset.chart);
    if (!source) return;
    const spec = JSON.parse(source.textContent);
    const chart = echarts.init(element, null, { renderer: "svg", locale: document.documentElement.lang === "fr" ? "FR" : "EN" });
    chart.setOption({
      animation: false,
      grid: { left: 48, right: 16, top: 32, bottom: 28 },
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      xAxis: { type: "category", data: spec.x },
      yAxis: { type: "value", axisLabel: spec.percent ? { formatter: "{value} %" } : {} },
      series: spec.series.map((s) => ({ name: s.name, type: spec.kind || "line", data: s.data, showSymbol: false,
                                        step: s.step || false, areaStyle: s.area ? {} : undefined })),
    });
    window.addEventListener("resize", () => chart.resize());
  });
})();
