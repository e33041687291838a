<?php
// Sign (and optionally send) an lms_bridge webhook with PHP's standard functions (and curl to send).
//   LMS_BRIDGE_SCHEME=standard-webhooks LMS_BRIDGE_SECRET=whsec_... BODY='{"email": ...}' php sign.php
// Without URL it prints the headers; WEBHOOK_ID and WEBHOOK_TIMESTAMP fix them (test vectors).

function lms_bridge_sign(string $scheme, string $secret, string $body, string $id, int $timestamp,
                         string $header = 'X-Hub-Signature-256', string $prefix = 'sha256='): array {
    switch ($scheme) {
        case 'standard-webhooks':
            $key = base64_decode(preg_replace('/^whsec_/', '', $secret), true);
            $signature = base64_encode(hash_hmac('sha256', "$id.$timestamp." . $body, $key, true));
            return ['webhook-id' => $id, 'webhook-timestamp' => (string) $timestamp,
                    'webhook-signature' => "v1,$signature"];
        case 'hmac-sha256':
            return [$header => $prefix . hash_hmac('sha256', $body, $secret)];
        case 'lernito':  // the raw body's HMAC, hex
            return ['X-Lernito-Signature' => hash_hmac('sha256', $body, $secret)];
    }
    fwrite(STDERR, "unknown scheme $scheme\n");
    exit(2);
}

$body = getenv('BODY');  // sign exactly the bytes you send
$headers = lms_bridge_sign(getenv('LMS_BRIDGE_SCHEME'), getenv('LMS_BRIDGE_SECRET'), $body,
    getenv('WEBHOOK_ID') ?: 'msg_' . bin2hex(random_bytes(12)), (int) (getenv('WEBHOOK_TIMESTAMP') ?: time()),
    getenv('HMAC_HEADER') ?: 'X-Hub-Signature-256', getenv('HMAC_PREFIX') !== false ? getenv('HMAC_PREFIX') : 'sha256=');
if (!getenv('URL')) {
    foreach ($headers as $name => $value) { echo "$name: $value\n"; }
    exit(0);
}
$lines = ['Content-Type: application/json'];
foreach ($headers as $name => $value) { $lines[] = "$name: $value"; }
$context = stream_context_create(['http' => ['method' => 'POST', 'header' => implode("\r\n", $lines),
                                             'content' => $body, 'ignore_errors' => true, 'timeout' => 30]]);
$reply = file_get_contents(getenv('URL'), false, $context);
preg_match('/^HTTP\/\S+ (\d+)/', $http_response_header[0], $status);
echo $status[1] . ' ' . $reply . "\n";
exit($status[1] >= 200 && $status[1] < 300 ? 0 : 1);  // retry only 429 and 5xx
