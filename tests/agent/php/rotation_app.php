<?php
// An application as the seed writes one: credentials from the agent, a database login, and
// on a refused login refreshSecretForRotation and one more try. Runs until STOP_FILE exists.
// Usage: php rotation_app.php <agent-endpoint> <secret-arn> <stop-file>
// Prints one JSON object: every login attempt as [started, ok, after_refresh] (unix times;
// for a retry, when its refreshSecretForRotation call started).

namespace StellarDominion\Services;

class SecretsManagerService
{
    public static function create(): self
    {
        throw new \Exception("fallback to the direct API was used");
    }
}

require __DIR__ . '/SecretsManagerAgentClient.php';

[$_, $endpoint, $secretArn, $stopFile] = $argv;
$client = new SecretsManagerAgentClient($endpoint, 5);

function login(array $c): bool
{
    try {
        $dsn = "mysql:host={$c['host']};port={$c['port']};dbname={$c['dbname']}";
        (new \PDO($dsn, $c['username'], $c['password']))->query('SELECT 1');
        return true;
    } catch (\PDOException $e) {
        return false;
    }
}

$attempts = [];
while (!file_exists($stopFile)) {
    $started = microtime(true);
    $ok = login($client->getDatabaseCredentials($secretArn));
    $attempts[] = [$started, $ok, false];
    if (!$ok) {
        $started = microtime(true);
        $fresh = json_decode($client->refreshSecretForRotation($secretArn)['SecretString'], true);
        $attempts[] = [$started, login($fresh), true];
    }
    usleep(5000);
}
echo json_encode(['attempts' => $attempts]), "\n";
