// vega-interpreter imports three helpers from "vega-util"; the vega bundle already
// carries them, so this module hands them over instead of loading vega-util twice.
const v = window.vega;
export const ascending = v.ascending;
export const isString = v.isString;
export const DisallowedObjectProperties = v.DisallowedObjectProperties;
