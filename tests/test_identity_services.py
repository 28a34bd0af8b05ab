@pytest.mark.parametrize(
    ("mode", "queries"),
    [(IdentityPolicy.Mode.ONE_CONTROLLER, 3), (IdentityPolicy.Mode.SEPARATE_CONTROLLERS, 2)],
)
def test_the_store_count_costs_few_queries(
    world, lyon_lille, django_assert_num_queries, mode, queries
):
    """The contact page's count: the network, its policy, one count (none in separate mode)."""
    IdentityPolicy.objects.create(network=world.root.network, mode=mode)
    lyon, _ = lyon_lille
    with django_assert_num_queries(queries):
        other_units_count(lyon)
