using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Domain.Tests;

public class AccessPolicyTests
{
    private static Caller Key(string? project, ApiKeyRole role) => new(Guid.NewGuid(), "abcd1234", project, role);

    [Theory]
    [InlineData(ApiKeyRole.Viewer, ApiKeyRole.Viewer, AccessDecision.Allowed)]
    [InlineData(ApiKeyRole.Viewer, ApiKeyRole.Submitter, AccessDecision.Forbidden)]
    [InlineData(ApiKeyRole.Submitter, ApiKeyRole.Submitter, AccessDecision.Allowed)]
    [InlineData(ApiKeyRole.Submitter, ApiKeyRole.Producer, AccessDecision.Forbidden)]
    [InlineData(ApiKeyRole.Producer, ApiKeyRole.Viewer, AccessDecision.Allowed)]
    public void Roles_include_the_ones_below_them_within_their_project(ApiKeyRole held, ApiKeyRole required, AccessDecision decision)
    {
        Assert.Equal(decision, AccessPolicy.Decide(Key("alpha", held), "alpha", required));
    }

    [Theory]
    [InlineData(ApiKeyRole.Viewer)]
    [InlineData(ApiKeyRole.Producer)]
    public void Another_projects_thing_and_a_missing_thing_get_the_same_not_found(ApiKeyRole held)
    {
        Assert.Equal(AccessDecision.NotFound, AccessPolicy.Decide(Key("beta", held), "alpha", ApiKeyRole.Viewer));
        Assert.Equal(AccessDecision.NotFound, AccessPolicy.Decide(Key("beta", held), null, ApiKeyRole.Viewer));
    }

    [Fact]
    public void An_admin_may_ask_about_anything()
    {
        Assert.Equal(AccessDecision.Allowed, AccessPolicy.Decide(Key(null, ApiKeyRole.Admin), "alpha", ApiKeyRole.Producer));
        Assert.Equal(AccessDecision.Allowed, AccessPolicy.Decide(Key(null, ApiKeyRole.Admin), null, ApiKeyRole.Producer));
    }

    [Fact]
    public void A_producer_grants_keys_of_its_own_project_up_to_its_own_role_and_only_admins_grant_admin()
    {
        var producer = Key("alpha", ApiKeyRole.Producer);

        Assert.True(AccessPolicy.MayGrant(producer, "alpha", ApiKeyRole.Producer));
        Assert.True(AccessPolicy.MayGrant(producer, "alpha", ApiKeyRole.Viewer));
        Assert.False(AccessPolicy.MayGrant(producer, "beta", ApiKeyRole.Viewer));
        Assert.False(AccessPolicy.MayGrant(producer, null, ApiKeyRole.Admin));
        Assert.False(AccessPolicy.MayGrant(Key("alpha", ApiKeyRole.Submitter), "alpha", ApiKeyRole.Viewer));
        Assert.True(AccessPolicy.MayGrant(Key(null, ApiKeyRole.Admin), null, ApiKeyRole.Admin));
    }
}
