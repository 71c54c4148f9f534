// The types of hls.js's light build (its package exports no types for
// "hls.js/light"; the API is the full build's).
declare module "hls.js/light" {
  import Hls from "hls.js";
  export default Hls;
}
