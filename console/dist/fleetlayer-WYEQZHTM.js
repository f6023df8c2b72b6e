import{a}from"./chunk-IHFN5PDW.js";import"./chunk-VPA7RRBY.js";import"./chunk-SQE76S5B.js";export{a as FleetLayer};
