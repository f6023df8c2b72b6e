// The trucks' state colours, shared by the map layers and the legends (a module of its own so that
// the feed and its legend need not wait for MapLibre's chunk).
export const stateColours = {
  moving: '#1f8a3b', stopped: '#5f6b7a', no_signal: '#b7bcc4',
  alert_info: '#2f6fd6', alert_warning: '#f08c00', alert_severe: '#d6001c',
};
