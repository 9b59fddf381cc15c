// The output-area choropleth: Leaflet with the hub's GeoJSON and no tile layer (nothing
// is fetched from another site). Areas are shaded by quintile of the measure; wards
// are outlined; selecting an area (click, or Enter on the focused area) opens it.
const el = document.getElementById("map");
if (el && window.L) {
  const areas = JSON.parse(document.getElementById(el.dataset.areas).textContent);
  const wards = JSON.parse(document.getElementById(el.dataset.wards).textContent);
  const purpose = encodeURIComponent(el.dataset.purpose);
  const values = areas.features.map((f) => f.properties.value).sort((a, b) => a - b);
  const q = [0.2, 0.4, 0.6, 0.8].map((p) => values[Math.floor(p * (values.length - 1))]);
  const colours = ["#f3f2f1", "#c6dbef", "#6baed6", "#2171b5", "#08306b"];
  const colour = (v) => colours[q.filter((t) => v > t).length];
  const map = L.map(el, { zoomSnap: 0.25, attributionControl: false });
  const layer = L.geoJSON(areas, {
    style: (f) => ({ color: "#505a5f", weight: 0.6, fillColor: colour(f.properties.value), fillOpacity: 0.85 }),
    onEachFeature: (f, l) => {
      const p = f.properties;
      l.bindTooltip(`${p.name}: ${p.value.toLocaleString()}`);
      l.on("click", () => { window.location.href = `/map/areas/${encodeURIComponent(p.oa_code)}?purpose=${purpose}`; });
      l.on("add", () => {
        const path = l.getElement && l.getElement();
        if (path) {
          path.setAttribute("tabindex", "0");
          path.setAttribute("role", "link");
          path.setAttribute("aria-label", `${p.name}, ${el.dataset.measure}: ${p.value.toLocaleString()}`);
          path.addEventListener("keydown", (e) => { if (e.key === "Enter") l.fire("click"); });
        }
      });
    },
  }).addTo(map);
  L.geoJSON(wards, { style: { color: "#0b0c0c", weight: 2.5, fill: false }, interactive: false }).addTo(map);
  map.fitBounds(layer.getBounds());
  el.setAttribute("data-rendered", "true");
}
