/* The segmentation report's charts (admin/semantic_catalog/segmentationrun/report.html): the data comes
   from the page's json_script element "report-data"; Chart.js is the vendored UMD build (no CDN). */
"use strict";
(function () {
  const source = document.getElementById("report-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  const style = getComputedStyle(document.documentElement);
  Chart.defaults.color = style.getPropertyValue("--body-quiet-color").trim() || "#666";
  Chart.defaults.borderColor = style.getPropertyValue("--hairline-color").trim() || "#e8e8e8";
  const common = { animation: false, responsive: true, maintainAspectRatio: false };

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  function axis(title, extra) {
    return Object.assign({ title: { display: true, text: title } }, extra || {});
  }

  draw("chart-sizes", {
    type: "bar",
    data: {
      labels: data.sizes.labels,
      datasets: [{ label: "items", data: data.sizes.values, backgroundColor: data.sizes.colors }],
    },
    options: Object.assign({}, common, {
      plugins: { legend: { display: false } },
      scales: { y: axis("items", { beginAtZero: true, ticks: { precision: 0 } }) },
    }),
  });

  if (data.map) {
    draw("chart-map", {
      type: "scatter",
      data: {
        datasets: data.map.map(function (segment) {
          return {
            label: segment.label,
            data: segment.points,
            backgroundColor: segment.color,
            borderColor: segment.color,
            pointRadius: 3,
          };
        }),
      },
      options: Object.assign({}, common, {
        scales: { x: axis("first principal axis"), y: axis("second principal axis") },
      }),
    });
  }

  draw("chart-confidence", {
    type: "bar",
    data: {
      labels: data.confidence.labels,
      datasets: [
        {
          type: "line",
          label: "mean",
          data: data.confidence.mean,
          showLine: false,
          pointRadius: 6,
          pointStyle: "rectRot",
          clip: 8, // a mean of 1.0 sits on the top edge: draw all of its marker
          backgroundColor: "#222",
          borderColor: "#222",
        },
        {
          label: "min to max",
          data: data.confidence.range,
          backgroundColor: data.confidence.colors,
          borderSkipped: false,
          minBarLength: 3, // a segment whose items all have one confidence still shows its bar
        },
      ],
    },
    options: Object.assign({}, common, {
      scales: { y: axis("confidence", { min: 0, max: 1 }) },
    }),
  });

  draw("chart-seconds", {
    type: "bar",
    data: {
      labels: data.stages.labels,
      datasets: [{ label: "seconds", data: data.stages.seconds, backgroundColor: "#4e79a7" }],
    },
    options: Object.assign({}, common, {
      plugins: { legend: { display: false } },
      scales: { y: axis("seconds", { beginAtZero: true }) },
    }),
  });

  draw("chart-tokens", {
    type: "bar",
    data: {
      labels: data.stages.labels,
      datasets: [
        { label: "tokens in", data: data.stages.tokens_in, backgroundColor: "#f28e2b" },
        { label: "tokens out", data: data.stages.tokens_out, backgroundColor: "#59a14f" },
      ],
    },
    options: Object.assign({}, common, {
      scales: { x: { stacked: true }, y: axis("tokens", { stacked: true, beginAtZero: true, ticks: { precision: 0 } }) },
    }),
  });
})();
