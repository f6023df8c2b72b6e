// Words of the console in Chinese (the default: the users are city staff) and English.
const zh = {
  title: '渣土车智能监管', signin: '登录', token: '访问令牌', signinHint: '请输入管理员发放的访问令牌（muckwatch token）',
  signout: '退出', badToken: '令牌无效或已撤销', centre: '实时监控', wall: '大屏', squad: '路面稽查', analyst: '统计分析', kpis: '考核排名',
  feed: '报警处置', allOfficers: '执法人员', officerFree: '空闲', officerBusy: '已派遣', officerStale: '位置过时', officerOff: '不可派遣', moreAlerts: '另有 %d 条（用筛选缩小范围）', allDistricts: '全部区', allRules: '全部规则', allSeverities: '全部级别', sound: '声音', notify: '桌面通知',
  moving: '行驶', stopped: '停车', no_signal: '无信号', alert_severe: '严重报警', alert_warning: '一般报警', alert_info: '提示',
  severe: '严重', warning: '一般', info: '提示', overdue: '超时未处置', live: '实时', reconnecting: '重连中…',
  trucks: '车辆', openAlerts: '未结报警', since: '开始于', where: '位置', value: '测量值', limit: '限值', evidence: '证据',
  permit: '准运证', company: '企业', risk: '风险', reasons: '原因', officers: '最近执法人员', distance: '距离', eta: '预计到达',
  dispatch: '派遣', acknowledge: '签收', resolve: '办结', dismiss: '误报', dismissReason: '误报原因（必填）', confirm: '确认',
  cancel: '取消', history: '处置记录', state: '状态', new: '待处置', dispatched: '已派遣', acknowledged: '已签收',
  resolved: '已办结', dismissed: '已作废', gridStaff: '网格员', close: '关闭', track: '轨迹',
  level: '升级', // an overdue alert's escalation level: 升级 N
  plate: '车牌', lookup: '查询', nearMe: '附近车辆', permitValid: '准运证有效', permitInvalid: '无有效准运证',
  noPermit: '没有准运证', permitNotNow: '准运证不在有效期', route: '路线', lastPosition: '最后位置', violations30: '近30天违规',
  none: '无', unknownPlate: '查无此车', riskiest: '风险最高', low: '低', medium: '中', high: '高', locating: '定位中…',
  tapMap: '或在地图上点选位置', radius: '半径', noVehicles: '附近没有车辆',
  from: '从', to: '到', byDay: '按日', byHour: '按小时', splitBy: '分类', rule: '规则', district: '区', site: '场地',
  query: '查询', exportCsv: '导出CSV', table: '明细', count: '数量', heatmap: '热力图', replay: '轨迹回放', speed: '速度',
  play: '播放', pause: '暂停', total: '合计', noData: '没有数据',
  today: '今日', byDistrict: '各区报警', byRule: '各类违规', severeOpen: '未结严重报警', onRoad: '在途车辆',
  updated: '更新于', settings: '底图', tileUrl: '瓦片地址', tileCrs: '坐标系', save: '保存', noBase: '无底图（仅城市图层）',
  lowRes: '无显卡（软件渲染）时以较低分辨率绘制指挥中心地图，更流畅', renderer: '本机地图渲染', softwareGL: '软件渲染',
  riskOpenAlert: '未结报警：%s · %s，始于 %s', riskViolations: '近30天违规 %d 次', riskViolation: '近30天违规 1 次',
  riskUnregistered: '未登记的渣土车', riskNoPermit: '当前无有效准运证',
  rules: {
    route_deviation: '偏离路线', speeding: '超速', restricted_zone: '禁行区', overload: '超载', dwell: '异常停留',
    unlicensed: '无证运输', cover_open: '未密闭', spillage: '撒漏', signal_lost: 'GPS掉线', site_exit_risk: '出场风险',
    trip_unclosed: '未闭合运次',
  },
};
const en = {
  title: 'Muck-truck supervision', signin: 'Sign in', token: 'Access token', signinHint: 'Paste the token your administrator gave you (muckwatch token)',
  signout: 'Sign out', badToken: 'Unknown or revoked token', centre: 'Command centre', wall: 'Wall screen', squad: 'Squad', analyst: 'Analysis', kpis: 'KPIs',
  feed: 'Alerts', allOfficers: 'Officers', officerFree: 'available', officerBusy: 'dispatched', officerStale: 'position stale', officerOff: 'unavailable', moreAlerts: '%d more (narrow them with the filters)', allDistricts: 'All districts', allRules: 'All rules', allSeverities: 'All severities', sound: 'Sound', notify: 'Desktop notice',
  moving: 'Moving', stopped: 'Stopped', no_signal: 'No signal', alert_severe: 'Severe alert', alert_warning: 'Warning', alert_info: 'Info',
  severe: 'Severe', warning: 'Warning', info: 'Info', overdue: 'Overdue', live: 'Live', reconnecting: 'Reconnecting…',
  trucks: 'Trucks', openAlerts: 'Open alerts', since: 'Since', where: 'Where', value: 'Value', limit: 'Limit', evidence: 'Evidence',
  permit: 'Permit', company: 'Company', risk: 'Risk', reasons: 'Reasons', officers: 'Nearest officers', distance: 'Distance', eta: 'ETA',
  dispatch: 'Dispatch', acknowledge: 'Acknowledge', resolve: 'Resolve', dismiss: 'Dismiss', dismissReason: 'Why is it false? (required)', confirm: 'Confirm',
  cancel: 'Cancel', history: 'Handling', state: 'State', new: 'New', dispatched: 'Dispatched', acknowledged: 'Acknowledged',
  resolved: 'Resolved', dismissed: 'Dismissed', gridStaff: 'Grid staff', close: 'Close', track: 'Track',
  level: 'Level', // an overdue alert's escalation level
  plate: 'Plate', lookup: 'Look up', nearMe: 'Near me', permitValid: 'Permit valid', permitInvalid: 'No valid permit',
  noPermit: 'No permit', permitNotNow: 'Permit not valid now', route: 'Route', lastPosition: 'Last position', violations30: 'Violations, 30 days',
  none: 'None', unknownPlate: 'Unknown vehicle', riskiest: 'Riskiest', low: 'Low', medium: 'Medium', high: 'High', locating: 'Locating…',
  tapMap: 'or tap a point on the map', radius: 'Radius', noVehicles: 'No vehicle nearby',
  from: 'From', to: 'To', byDay: 'By day', byHour: 'By hour', splitBy: 'Split by', rule: 'Rule', district: 'District', site: 'Site',
  query: 'Query', exportCsv: 'Export CSV', table: 'Table', count: 'Count', heatmap: 'Heatmap', replay: 'Track replay', speed: 'Speed',
  play: 'Play', pause: 'Pause', total: 'Total', noData: 'No data',
  today: 'Today', byDistrict: 'Alerts by district', byRule: 'Violations by rule', severeOpen: 'Open severe alerts', onRoad: 'Trucks on the road',
  updated: 'Updated', settings: 'Base map', tileUrl: 'Tile URL', tileCrs: 'Coordinates', save: 'Save', noBase: 'No base map (city layers only)',
  lowRes: 'Draw the command centre\'s map at a lower resolution on software rendering (no GPU): smoother', renderer: 'Map drawn by', softwareGL: 'software',
  riskOpenAlert: 'Open alert: %s, %s, since %s', riskViolations: '%d violations in the last 30 days', riskViolation: '1 violation in the last 30 days',
  riskUnregistered: 'Not a registered muck truck', riskNoPermit: 'No permit valid now',
  rules: {
    route_deviation: 'Route deviation', speeding: 'Speeding', restricted_zone: 'Restricted zone', overload: 'Overload', dwell: 'Dwell',
    unlicensed: 'Unlicensed', cover_open: 'Cover open', spillage: 'Spillage', signal_lost: 'Signal lost', site_exit_risk: 'Site-exit risk',
    trip_unclosed: 'Trip unclosed',
  },
};

const dicts = { zh, en };

// lang is the chosen language, Chinese unless the user switched.
export function lang() {
  return localStorage.getItem('mw.lang') === 'en' ? 'en' : 'zh';
}

export function setLang(l) {
  localStorage.setItem('mw.lang', l === 'en' ? 'en' : 'zh');
}

// t is the word for key in the chosen language (the key itself when missing).
export function t(key) {
  return dicts[lang()][key] ?? key;
}

export function ruleName(rule) {
  return dicts[lang()].rules[rule] ?? rule;
}

export const ruleIds = Object.keys(zh.rules);
