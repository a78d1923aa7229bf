<?php
/* php-fpm driver: GET ?first=I&n=K[&floor=DIR] sends K messages in this request and
 * answers with the per-call latencies (hrtime, ns) and the worker's pid as JSON. */
require __DIR__ . '/msg.inc';
$first = (int)($_GET['first'] ?? 0);
$n = (int)($_GET['n'] ?? 1);
$floor = isset($_GET['floor']) && $_GET['floor'] !== '' ? $_GET['floor'] : null;
header('Content-Type: application/json');
echo json_encode(bench_send($first, $n, $floor));
