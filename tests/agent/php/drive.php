<?php
// Drives the seed's SecretsManagerAgentClient, unchanged, against a running agent.
// Usage: php drive.php <agent-endpoint> <secret-arn>; prints one JSON object.

namespace StellarDominion\Services;

// The client falls back to this service when the agent fails; here that is a failure.
class SecretsManagerService
{
    public static function create(): self
    {
        throw new \Exception("fallback to the direct API was used");
    }
}

require __DIR__ . '/SecretsManagerAgentClient.php';

$endpoint = $argv[1];
$secretArn = $argv[2];
$client = new SecretsManagerAgentClient($endpoint, 5);
$result = ['available' => $client->isAgentAvailable()];
$result['secret'] = $client->getSecret($secretArn);
$result['credentials'] = $client->getDatabaseCredentials($secretArn);
$result['refreshed'] = $client->refreshSecretForRotation($secretArn);
try {
    $client->getSecret('agent-test/php-missing-secret');
    $result['missing'] = 'no error';
} catch (\Exception $e) {
    $result['missing'] = $e->getMessage();
}
echo json_encode($result), "\n";
