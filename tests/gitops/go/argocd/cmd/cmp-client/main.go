// Command cmp-client calls Argo CD's config-management-plugin servers the way argocd-repo-server
// does, with Argo CD's own client package, discovery and repo-stream sender, so that tests can drive
// a real argocd-cmp-server from any language.
//
// It reads one JSON request on stdin and writes one JSON response on stdout. The plugin sockets are
// found where the repo server finds them: in $ARGOCD_PLUGINSOCKFILEPATH. The request names a call:
//
//   - "GenerateManifest": the repo server's whole path for one Application source: its source type
//     (explicit, else discovery, which asks the plugins before looking for Helm or kustomize), then
//     the plugin (named, or the first whose discover rule matches), CheckPluginConfiguration, and
//     GenerateManifest with the environment the repo server builds for plugins.
//   - "AppSourceType": only the first step, the source type the repo server would pick.
//   - "GetParametersAnnouncement": what the repo server asks to show an Application's parameters.
//   - "CheckPluginConfiguration" and "MatchRepository": one call to the plugin on "socket".
//
// The response has the call's result, or "error" with the message the repo server would report (and
// the exit status is 1). A request the client cannot read exits with status 2.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	grpc_retry "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"google.golang.org/protobuf/types/known/emptypb"
	k8sversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/argoproj/argo-cd/v3/cmpserver/apiclient"
	"github.com/argoproj/argo-cd/v3/common"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/app/discovery"
	"github.com/argoproj/argo-cd/v3/util/cmp"
	utilio "github.com/argoproj/argo-cd/v3/util/io"
	"github.com/argoproj/gitops-engine/pkg/utils/kube"
)

// request is one call, described as the repo server knows an Application.
type request struct {
	// Call is the operation (see the package comment).
	Call string `json:"call"`
	// RepoPath is the checkout's root; Source.Path is relative to it.
	RepoPath string `json:"repoPath"`
	// AppName is the Application's name (ARGOCD_APP_NAME).
	AppName string `json:"appName"`
	// Namespace is the Application's destination namespace (ARGOCD_APP_NAMESPACE).
	Namespace string `json:"namespace"`
	// Project is the Application's AppProject (ARGOCD_APP_PROJECT_NAME).
	Project string `json:"project"`
	// RepoURL is the repository's URL (ARGOCD_APP_SOURCE_REPO_URL).
	RepoURL string `json:"repoURL"`
	// Revision is the resolved commit (ARGOCD_APP_REVISION and its short forms).
	Revision string `json:"revision"`
	// Source is the Application's spec.source, in Argo CD's own type.
	Source v1alpha1.ApplicationSource `json:"source"`
	// KubeVersion is the destination cluster's version as the controller reports it (e.g. "v1.34.2").
	KubeVersion string `json:"kubeVersion"`
	// APIVersions are the destination cluster's API versions.
	APIVersions []string `json:"apiVersions"`
	// Socket is the plugin's socket file name, for the single-plugin calls.
	Socket string `json:"socket"`
	// TimeoutSeconds bounds the whole call (the repo server's default exec timeout is 90 s).
	TimeoutSeconds int `json:"timeoutSeconds"`
}

// response is what the call returned; only the fields of that call are set.
type response struct {
	Error                  string             `json:"error,omitempty"`
	SourceType             string             `json:"sourceType,omitempty"`
	IsDiscoveryConfigured  *bool              `json:"isDiscoveryConfigured,omitempty"`
	ProvideGitCreds        *bool              `json:"provideGitCreds,omitempty"`
	IsSupported            *bool              `json:"isSupported,omitempty"`
	IsDiscoveryEnabled     *bool              `json:"isDiscoveryEnabled,omitempty"`
	ParameterAnnouncements any                `json:"parameterAnnouncements,omitempty"`
	Manifests              []string           `json:"manifests,omitempty"`
	Objects                []map[string]any   `json:"objects,omitempty"`
	Env                    []string           `json:"env,omitempty"`
	Timings                map[string]float64 `json:"timings,omitempty"`
}

func main() {
	var req request
	decoder := json.NewDecoder(os.Stdin)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&req); err != nil {
		fmt.Fprintf(os.Stderr, "cmp-client: cannot read the request on stdin: %v\n", err)
		os.Exit(2)
	}
	timeout := time.Duration(req.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	res, err := run(ctx, req)
	cancel()
	if err != nil {
		res.Error = err.Error()
	}
	if encodeErr := json.NewEncoder(os.Stdout).Encode(res); encodeErr != nil {
		fmt.Fprintf(os.Stderr, "cmp-client: cannot write the response: %v\n", encodeErr)
		os.Exit(2)
	}
	if err != nil {
		os.Exit(1)
	}
}

func run(ctx context.Context, req request) (*response, error) {
	appPath := filepath.Join(req.RepoPath, req.Source.Path)
	switch req.Call {
	case "GenerateManifest":
		return generateManifest(ctx, req, appPath)
	case "AppSourceType":
		sourceType, err := appSourceType(ctx, req, appPath)
		return &response{SourceType: string(sourceType)}, err
	case "GetParametersAnnouncement":
		return parametersAnnouncement(ctx, req, appPath)
	case "CheckPluginConfiguration", "MatchRepository":
		return onePlugin(ctx, req, appPath)
	default:
		fmt.Fprintf(os.Stderr, "cmp-client: unknown call %q\n", req.Call)
		os.Exit(2)
		return nil, nil
	}
}

// appEnv is the environment the repo server gives every manifest generation (its newEnv).
func appEnv(req request) v1alpha1.Env {
	short := func(n int) string { return req.Revision[:min(n, len(req.Revision))] }
	return v1alpha1.Env{
		{Name: "ARGOCD_APP_NAME", Value: req.AppName},
		{Name: "ARGOCD_APP_NAMESPACE", Value: req.Namespace},
		{Name: "ARGOCD_APP_PROJECT_NAME", Value: req.Project},
		{Name: "ARGOCD_APP_REVISION", Value: req.Revision},
		{Name: "ARGOCD_APP_REVISION_SHORT", Value: short(7)},
		{Name: "ARGOCD_APP_REVISION_SHORT_8", Value: short(8)},
		{Name: "ARGOCD_APP_SOURCE_REPO_URL", Value: req.RepoURL},
		{Name: "ARGOCD_APP_SOURCE_PATH", Value: req.Source.Path},
		{Name: "ARGOCD_APP_SOURCE_TARGET_REVISION", Value: req.Source.TargetRevision},
	}
}

// pluginEnv adds what the repo server adds for a plugin (its getPluginEnvs and getPluginParamEnvs):
// the cluster's version and APIs, the Application's plugin env as ARGOCD_ENV_<NAME> (with $VAR
// references to the variables above expanded), and the parameters as ARGOCD_APP_PARAMETERS (JSON,
// `null` when there are none) and PARAM_<NAME>[_<i>|_<KEY>].
func pluginEnv(base []string, req request, withCluster bool) ([]string, error) {
	env := base
	if withCluster {
		kubeVersion := ""
		if req.KubeVersion != "" {
			parsed, err := k8sversion.ParseGeneric(req.KubeVersion)
			if err != nil {
				return nil, fmt.Errorf("could not parse kubernetes version %s: %w", req.KubeVersion, err)
			}
			kubeVersion = parsed.String()
		}
		env = append(env, "KUBE_VERSION="+kubeVersion, "KUBE_API_VERSIONS="+strings.Join(req.APIVersions, ","))
	}
	parsed := make(v1alpha1.Env, len(env))
	for i, entry := range env {
		item, err := v1alpha1.NewEnvEntry(entry)
		if err != nil {
			return nil, errors.New("failed to parse env vars")
		}
		parsed[i] = item
	}
	plugin := req.Source.Plugin
	if plugin == nil {
		return env, nil
	}
	for _, entry := range plugin.Env {
		env = append(env, fmt.Sprintf("ARGOCD_ENV_%s=%s", entry.Name, parsed.Envsubst(entry.Value)))
	}
	params, err := plugin.Parameters.Environ()
	if err != nil {
		return nil, fmt.Errorf("failed to generate env vars from parameters: %w", err)
	}
	return append(env, params...), nil
}

// appSourceType is the repo server's choice: the explicit type, else discovery (plugins first).
func appSourceType(ctx context.Context, req request, appPath string) (v1alpha1.ApplicationSourceType, error) {
	explicit, err := req.Source.ExplicitType()
	if err != nil {
		return "", err
	}
	if explicit != nil {
		return *explicit, nil
	}
	found, err := discovery.AppType(ctx, appPath, req.RepoPath, nil, nil, appEnv(req).Environ())
	if err != nil {
		return "", fmt.Errorf("error getting app source type: %w", err)
	}
	return v1alpha1.ApplicationSourceType(found), nil
}

func pluginName(req request) string {
	if req.Source.Plugin != nil {
		return req.Source.Plugin.Name
	}
	return ""
}

func generateManifest(ctx context.Context, req request, appPath string) (*response, error) {
	timings := map[string]float64{}
	started := time.Now()
	sourceType, err := appSourceType(ctx, req, appPath)
	res := &response{SourceType: string(sourceType), Timings: timings}
	if err != nil || sourceType != v1alpha1.ApplicationSourceTypePlugin {
		return res, err
	}
	env, err := pluginEnv(appEnv(req).Environ(), req, true)
	if err != nil {
		return res, err
	}
	res.Env = env
	detected := time.Now()
	conn, client, err := discovery.DetectConfigManagementPlugin(ctx, appPath, req.RepoPath, pluginName(req), env, nil)
	if err != nil {
		return res, err
	}
	defer utilio.Close(conn)
	timings["discoverySeconds"] = time.Since(detected).Seconds()
	if _, err := client.CheckPluginConfiguration(ctx, &emptypb.Empty{}); err != nil {
		return res, fmt.Errorf("error calling cmp-server checkPluginConfiguration: %w", err)
	}
	generating := time.Now()
	stream, err := client.GenerateManifest(ctx, grpc_retry.Disable())
	if err != nil {
		return res, fmt.Errorf("error getting generateManifestStream: %w", err)
	}
	if err := cmp.SendRepoStream(stream.Context(), appPath, req.RepoPath, stream, env, nil); err != nil {
		return res, fmt.Errorf("error sending file to cmp-server: %w", err)
	}
	generated, err := stream.CloseAndRecv()
	if err != nil {
		return res, fmt.Errorf("error generating manifests in cmp: %w", err)
	}
	timings["generateManifestSeconds"] = time.Since(generating).Seconds()
	res.Manifests = generated.Manifests
	// As the repo server reads the answer: every manifest string split into objects.
	for _, manifest := range generated.Manifests {
		objects, err := kube.SplitYAML([]byte(manifest))
		if err != nil {
			return res, fmt.Errorf("failed to convert CMP manifests to unstructured objects: %s", err.Error())
		}
		for _, object := range objects {
			res.Objects = append(res.Objects, object.Object)
		}
	}
	timings["totalSeconds"] = time.Since(started).Seconds()
	return res, nil
}

func parametersAnnouncement(ctx context.Context, req request, appPath string) (*response, error) {
	// The repo server's populatePluginAppDetails: fewer variables than for generation.
	base := []string{
		"ARGOCD_APP_NAME=" + req.AppName,
		"ARGOCD_APP_SOURCE_REPO_URL=" + req.RepoURL,
		"ARGOCD_APP_SOURCE_PATH=" + req.Source.Path,
		"ARGOCD_APP_SOURCE_TARGET_REVISION=" + req.Source.TargetRevision,
	}
	env, err := pluginEnv(base, req, false)
	if err != nil {
		return &response{}, err
	}
	conn, client, err := discovery.DetectConfigManagementPlugin(ctx, appPath, req.RepoPath, pluginName(req), env, nil)
	if err != nil {
		return &response{}, fmt.Errorf("failed to detect CMP for app: %w", err)
	}
	defer utilio.Close(conn)
	stream, err := client.GetParametersAnnouncement(ctx, grpc_retry.Disable())
	if err != nil {
		return &response{}, fmt.Errorf("error getting parametersAnnouncementStream: %w", err)
	}
	if err := cmp.SendRepoStream(stream.Context(), appPath, req.RepoPath, stream, env, nil); err != nil {
		return &response{}, fmt.Errorf("error sending file to cmp-server: %w", err)
	}
	announced, err := stream.CloseAndRecv()
	if err != nil {
		return &response{}, fmt.Errorf("failed to get parameter announcement: %w", err)
	}
	return &response{ParameterAnnouncements: announced.ParameterAnnouncements}, nil
}

func onePlugin(ctx context.Context, req request, appPath string) (*response, error) {
	address := filepath.Join(common.GetPluginSockFilePath(), req.Socket)
	conn, client, err := apiclient.NewConfigManagementPluginClientSet(address).NewConfigManagementPluginClient()
	if err != nil {
		return &response{}, err
	}
	defer utilio.Close(conn)
	if req.Call == "CheckPluginConfiguration" {
		config, err := client.CheckPluginConfiguration(ctx, &emptypb.Empty{})
		if err != nil {
			return &response{}, err
		}
		return &response{IsDiscoveryConfigured: &config.IsDiscoveryConfigured, ProvideGitCreds: &config.ProvideGitCreds}, nil
	}
	// As discovery asks: the repository's files and the Application's basic environment.
	stream, err := client.MatchRepository(ctx, grpc_retry.Disable())
	if err != nil {
		return &response{}, fmt.Errorf("error getting stream client: %w", err)
	}
	if err := cmp.SendRepoStream(ctx, appPath, req.RepoPath, stream, appEnv(req).Environ(), nil); err != nil {
		return &response{}, fmt.Errorf("error sending stream: %w", err)
	}
	match, err := stream.CloseAndRecv()
	if err != nil {
		return &response{}, fmt.Errorf("error receiving stream response: %w", err)
	}
	return &response{IsSupported: &match.IsSupported, IsDiscoveryEnabled: &match.IsDiscoveryEnabled}, nil
}
