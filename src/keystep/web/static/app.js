// Draw every chart of the page: its plotly JSON sits in a non-executable <script type="application/json">.
document.addEventListener("DOMContentLoaded", () => {
  for (const block of document.querySelectorAll('script[type="application/json"][data-chart]')) {
    const target = document.getElementById(block.dataset.chart);
    if (!target || !window.Plotly) continue;
    const spec = JSON.parse(block.textContent);
    window.Plotly.newPlot(target, spec.data, spec.layout, {displaylogo: false, responsive: true});
  }
});
