// Draws the report charts from the series the page carries (script#series), with Chart.js.
(function () {
  const data = JSON.parse(document.getElementById("series").textContent);
  for (const [name, chart] of Object.entries(data)) {
    const canvas = document.getElementById("chart-" + name);
    if (!canvas || !window.Chart) continue;
    new Chart(canvas, {
      type: chart.type,
      data: {
        labels: chart.labels,
        datasets: chart.sets.map((set) => ({
          label: set.label, data: set.data, backgroundColor: set.color, borderRadius: 3,
          maxBarThickness: 48,
        })),
      },
      options: {
        indexAxis: chart.horizontal ? "y" : "x",
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: chart.sets.length > 1, position: "bottom" } },
        scales: {
          x: { stacked: !!chart.stacked, grid: { display: false }, ticks: { precision: 0 } },
          y: { stacked: !!chart.stacked, beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    });
  }
})();
