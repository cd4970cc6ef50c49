<?php

namespace StellarDominion\Services;

/**
 * Secrets Manager Agent Client (FUTURE IMPLEMENTATION)
 * Provides high-performance, low-cost access to secrets via local agent
 */
class SecretsManagerAgentClient
{
    private string $agentEndpoint;
    private string $ssrfToken;
    private int $timeout;

    public function __construct(
        string $agentEndpoint = 'http://localhost:2773',
        int $timeout = 5
    ) {
        $this->agentEndpoint = $agentEndpoint;
        $this->timeout = $timeout;
        $this->ssrfToken = $this->getSSRFToken();
    }

    /**
     * Get secret from agent with automatic retry
     */
    public function getSecret(string $secretId, bool $refreshNow = false): array
    {
        $url = $this->buildUrl($secretId, $refreshNow);
        
        $maxRetries = 3;
        $retryDelay = 1;
        
        for ($attempt = 1; $attempt <= $maxRetries; $attempt++) {
            try {
                return $this->makeRequest($url);
            } catch (\Exception $e) {
                error_log("Agent request attempt {$attempt} failed: " . $e->getMessage());
                
                if ($attempt < $maxRetries) {
                    sleep($retryDelay);
                    $retryDelay *= 2; // Exponential backoff
                } else {
                    throw new \Exception("Failed to retrieve secret after {$maxRetries} attempts: " . $e->getMessage());
                }
            }
        }
    }

    /**
     * Get database credentials with agent
     */
    public function getDatabaseCredentials(string $secretArn): array
    {
        try {
            $response = $this->getSecret($secretArn);
            
            if (!isset($response['SecretString'])) {
                throw new \Exception("Secret string not found in agent response");
            }
            
            $secretData = json_decode($response['SecretString'], true);
            
            if (json_last_error() !== JSON_ERROR_NONE) {
                throw new \Exception("Failed to parse secret JSON: " . json_last_error_msg());
            }
            
            return [
                'username' => $secretData['username'],
                'password' => $secretData['password'],
                'host' => $secretData['host'] ?? null,
                'port' => $secretData['port'] ?? 3306,
                'dbname' => $secretData['dbname'] ?? null
            ];
            
        } catch (\Exception $e) {
            // Fallback to direct API call if agent fails
            error_log("Agent failed, falling back to direct API: " . $e->getMessage());
            return $this->fallbackToDirectAPI($secretArn);
        }
    }

    /**
     * Force refresh secret during rotation
     */
    public function refreshSecretForRotation(string $secretArn): array
    {
        return $this->getSecret($secretArn, true);
    }

    private function getSSRFToken(): string
    {
        // Try environment variable first
        if ($token = $_ENV['AWS_TOKEN'] ?? null) {
            if (str_starts_with($token, 'file://')) {
                return file_get_contents(substr($token, 7));
            }
            return $token;
        }

        // Try default token file
        $tokenFile = '/var/run/awssmatoken';
        if (file_exists($tokenFile)) {
            return trim(file_get_contents($tokenFile));
        }

        // Try Lambda-specific locations
        $lambdaTokenFile = '/tmp/awssmatoken';
        if (file_exists($lambdaTokenFile)) {
            return trim(file_get_contents($lambdaTokenFile));
        }

        throw new \Exception("SSRF token not found. Agent may not be running.");
    }

    private function buildUrl(string $secretId, bool $refreshNow): string
    {
        $params = ['secretId' => $secretId];
        if ($refreshNow) {
            $params['refreshNow'] = 'true';
        }
        
        return $this->agentEndpoint . '/secretsmanager/get?' . http_build_query($params);
    }

    private function makeRequest(string $url): array
    {
        $context = stream_context_create([
            'http' => [
                'method' => 'GET',
                'header' => [
                    "X-Aws-Parameters-Secrets-Token: {$this->ssrfToken}",
                    "Content-Type: application/json"
                ],
                'timeout' => $this->timeout,
                'ignore_errors' => true
            ]
        ]);

        $response = file_get_contents($url, false, $context);
        
        if ($response === false) {
            throw new \Exception("Failed to connect to Secrets Manager Agent");
        }

        // Check HTTP response code
        $httpCode = 200;
        if (isset($http_response_header[0])) {
            preg_match('/HTTP\/\d\.\d\s+(\d+)/', $http_response_header[0], $matches);
            $httpCode = (int)($matches[1] ?? 200);
        }

        if ($httpCode !== 200) {
            throw new \Exception("Agent returned HTTP {$httpCode}: {$response}");
        }

        $data = json_decode($response, true);
        if (json_last_error() !== JSON_ERROR_NONE) {
            throw new \Exception("Invalid JSON response from agent: " . json_last_error_msg());
        }

        return $data;
    }

    private function fallbackToDirectAPI(string $secretArn): array
    {
        // Fallback to original SecretsManagerService
        $service = SecretsManagerService::create();
        return $service->getDatabaseCredentialsWithRetry($secretArn);
    }

    /**
     * Check if agent is available
     */
    public function isAgentAvailable(): bool
    {
        try {
            $context = stream_context_create([
                'http' => [
                    'method' => 'GET',
                    'timeout' => 2,
                    'ignore_errors' => true
                ]
            ]);
            
            $response = file_get_contents($this->agentEndpoint . '/health', false, $context);
            return $response !== false;
        } catch (\Exception $e) {
            return false;
        }
    }
}
